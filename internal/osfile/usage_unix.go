//go:build unix

package osfile

import (
	"os"
	"syscall"
)

// DiskUsage is the space a file takes on disk: its allocated blocks (holes
// and unwritten tails excluded), or its size where the system does not say.
func DiskUsage(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}
