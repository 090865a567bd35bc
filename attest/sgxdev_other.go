//go:build !linux

package attest

import (
	"fmt"
	"runtime"
)

func openSGXDevice(path string) (SGXDevice, error) {
	return nil, fmt.Errorf("%s: Occlum's SGX device needs linux, this is %s", path, runtime.GOOS)
}
