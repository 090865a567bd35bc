package attest

// FileSystem lets the external tests substitute stand-ins of Gramine's
// and the kernel's pseudo-files.
type FileSystem = fileSystem

// WithFS returns o with its file access replaced by f.
func WithFS(o Options, f FileSystem) Options {
	o.fs = f
	return o
}
