package collateral

import "github.com/asps-project/asps/internal/fileread"

// Errors of ReadFile, besides those of os.Open (fs.ErrNotExist, …).
var (
	// ErrNotRegularFile: the path is a FIFO, a device, a socket or a
	// directory (a symlink is followed; its target must be a regular
	// file).
	ErrNotRegularFile = fileread.ErrNotRegular
	// ErrFileTooLarge: the file exceeds the limit for what it should hold.
	ErrFileTooLarge = fileread.ErrTooLarge
)

// Size limits of the files this package and asps read.
const (
	// MaxDocumentFileLen bounds a bundle or cache document file: a body
	// of up to dcap.MaxCollateralLen, hex-encoded for CRLs, plus its chain.
	MaxDocumentFileLen = 3 * maxBodyLen
	// MaxCollateralFileLen bounds a collateral file in dcap-qvl's JSON
	// layout: four documents and three issuer chains.
	MaxCollateralFileLen = 8 * maxBodyLen
)

// ReadFile reads a regular file of at most limit bytes (fileread.Read).
func ReadFile(path string, limit int64) ([]byte, error) { return fileread.Read(path, limit) }
