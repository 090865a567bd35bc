//go:build unix

package fileread

import "syscall"

// openNonBlocking makes opening a FIFO return at once instead of waiting
// for a writer (ReadFile refuses it then); it changes nothing for regular
// files.
const openNonBlocking = syscall.O_NONBLOCK
