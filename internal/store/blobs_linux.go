package store

import (
	"os"

	"golang.org/x/sys/unix"
)

func (b *Blobs) written(string) { b.dirty.Store(true) }

// syncAll flushes the blob folder's whole filesystem with one syncfs(2):
// file data and the directory entries of every blob written since.
func (b *Blobs) syncAll() error {
	d, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}
