//go:build !unix

package collateral

const openNonBlocking = 0
