package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// spool holds blobs on local disk between Put and the commit that copies
// them into PostgreSQL. A file is named by its SHA-256 and counted: each
// Put adds a reference and each release drops one, and the file goes with
// the last, so two messages with the same bytes in flight at once share
// one file safely. Nothing in it needs to survive a crash (a message that
// did not commit is fetched again), so it is never flushed to disk.
type spool struct {
	dir  string
	mu   sync.Mutex
	refs map[string]int
}

// openSpool opens (creating) a spool folder and removes what a process
// that stopped left in it a day ago or more.
func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create blob spool: %w", err)
	}
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return &spool{dir: dir, refs: map[string]int{}}, nil
}

func (s *spool) path(sum string) string { return filepath.Join(s.dir, sum) }

func (s *spool) put(r io.Reader) (sum string, size int64, err error) {
	f, err := os.CreateTemp(s.dir, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	if size, err = io.Copy(io.MultiWriter(f, h), r); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	// Renaming over a file of the same content is harmless, even while
	// another reader has it open.
	if err := os.Rename(f.Name(), s.path(sum)); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	f = nil
	s.refs[sum]++
	return sum, size, nil
}

func (s *spool) release(sum string) {
	if sum == "" || strings.ContainsAny(sum, `/\`) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.refs[sum]
	if !ok {
		return
	}
	if n > 1 {
		s.refs[sum] = n - 1
		return
	}
	delete(s.refs, sum)
	os.Remove(s.path(sum))
}
