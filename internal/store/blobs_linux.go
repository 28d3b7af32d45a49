package store

import (
	"os"

	"golang.org/x/sys/unix"
)

func (b *fileBlobs) written(string) { b.dirty.Store(true) }

// syncAll flushes the blob folder's whole filesystem with one syncfs(2):
// file data and the directory entries of every blob written since.
func (b *fileBlobs) syncAll() error {
	d, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
