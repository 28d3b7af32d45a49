package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Blobs is a content-addressed file store: each blob is a file named by the
// SHA-256 of its content. Writing is idempotent (the same content lands on
// the same name), so a crash between writing a blob and committing the row
// that names it leaves at most an orphan file, never a missing one.
type Blobs struct {
	dir string
}

// OpenBlobs opens (creating) a blob folder.
func OpenBlobs(dir string) (*Blobs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("create blob folder: %w", err)
	}
	return &Blobs{dir: dir}, nil
}

// Put streams r into the store and returns its hex SHA-256 and size.
func (b *Blobs) Put(r io.Reader) (sum string, size int64, err error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("create blob: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("write blob: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("sync blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("close blob: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	dst := b.path(sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", 0, fmt.Errorf("create blob folder: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	f = nil
	return sum, size, nil
}

// Open opens a blob for reading. A missing blob is ErrNotFound.
func (b *Blobs) Open(sum string) (*os.File, error) {
	if !validSum(sum) {
		return nil, ErrNotFound
	}
	f, err := os.Open(b.path(sum))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Path is the file that holds a blob.
func (b *Blobs) path(sum string) string {
	return filepath.Join(b.dir, sum[:2], sum[2:4], sum)
}

func validSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
