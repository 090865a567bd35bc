//go:build !unix

package fileread

const openNonBlocking = 0
