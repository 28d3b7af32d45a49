package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// spool holds blobs between Put and the commit that copies them into
// PostgreSQL. An entry is named by its SHA-256 and counted: each Put adds
// a reference and each release drops one, and the entry goes with the
// last, so two messages with the same bytes in flight at once share one
// entry safely. Nothing in it needs to survive a crash (a message that did
// not commit is fetched again), so it is never flushed to disk.
//
// A blob of up to spoolMemBlob bytes is kept in memory while the spool
// holds less than spoolMemBytes; a larger one, or one past that budget,
// is a file in the spool folder. Most raw messages are small, and a file
// for each cost more than the rest of ingest: ext4 allocates an inode
// only after checking that it was not freed recently, and with a file
// created and removed per message that check took 7 s of a 10,000-message
// sync's 50 s of CPU (perf: recently_deleted, under openat).
type spool struct {
	dir  string
	mu   sync.Mutex
	refs map[string]*spooled
	mem  int64 // bytes of the entries held in memory
}

// spooled is one entry: its references, and its bytes when in memory.
type spooled struct {
	refs  int
	inMem bool
	data  []byte
}

// Bounds of the blobs a spool keeps in memory (see spool).
const (
	spoolMemBlob  = 1 << 20
	spoolMemBytes = 32 << 20
)

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
	return &spool{dir: dir, refs: map[string]*spooled{}}, nil
}

func (s *spool) path(sum string) string { return filepath.Join(s.dir, sum) }

func (s *spool) put(r io.Reader) (sum string, size int64, err error) {
	h := sha256.New()
	// Up to spoolMemBlob bytes are read into memory; one byte more means
	// the blob goes to a file. The buffer is pooled (a buffer grown for
	// each message cost more CPU than copying the bytes).
	head := putBuffers.Get().(*bytes.Buffer) // empty: each is reset when put back
	defer func() {
		head.Reset()
		putBuffers.Put(head)
	}()
	if _, err := head.ReadFrom(io.LimitReader(io.TeeReader(r, h), spoolMemBlob+1)); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	if head.Len() <= spoolMemBlob {
		sum = hex.EncodeToString(h.Sum(nil))
		size := int64(head.Len())
		s.mu.Lock()
		if e, ok := s.refs[sum]; ok {
			e.refs++
			s.mu.Unlock()
			return sum, size, nil
		}
		if s.mem+size <= spoolMemBytes {
			// A copy of exactly its size, not the buffer's.
			s.refs[sum] = &spooled{refs: 1, inMem: true, data: bytes.Clone(head.Bytes())}
			s.mem += size
			s.mu.Unlock()
			return sum, size, nil
		}
		s.mu.Unlock()
		// Past the budget: a file, as a large blob is (h has hashed
		// all of it).
		return s.putFile(head, h)
	}
	return s.putFile(io.MultiReader(head, io.TeeReader(r, h)), h)
}

// putFile spools a large blob to a file: r's bytes already read are
// hashed in h; the rest is hashed as it is read.
func (s *spool) putFile(r io.Reader, h hash.Hash) (sum string, size int64, err error) {
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
	if size, err = io.Copy(f, r); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.refs[sum]; ok && e.inMem {
		// The same bytes are in memory already.
		e.refs++
		return sum, size, nil
	}
	// Renaming over a file of the same content is harmless, even while
	// another reader has it open.
	if err := os.Rename(f.Name(), s.path(sum)); err != nil {
		return "", 0, fmt.Errorf("spool blob: %w", err)
	}
	f = nil
	if e, ok := s.refs[sum]; ok {
		e.refs++
	} else {
		s.refs[sum] = &spooled{refs: 1}
	}
	return sum, size, nil
}

// open opens a spooled blob: ErrNotFound when this process's spool does
// not hold it (a file another process left behind is not its to serve).
func (s *spool) open(sum string) (Blob, error) {
	s.mu.Lock()
	e, ok := s.refs[sum]
	s.mu.Unlock()
	switch {
	case !ok:
		return nil, ErrNotFound
	case e.inMem:
		return memBlob{Reader: bytes.NewReader(e.data), data: e.data}, nil
	}
	return openFile(s.path(sum))
}

func (s *spool) release(sum string) {
	if sum == "" || strings.ContainsAny(sum, `/\`) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.refs[sum]
	if !ok {
		return
	}
	if e.refs > 1 {
		e.refs--
		return
	}
	delete(s.refs, sum)
	if e.inMem {
		s.mem -= int64(len(e.data))
		return
	}
	os.Remove(s.path(sum))
}

// memBlob is a blob held in memory, hashed when it was put.
type memBlob struct {
	*bytes.Reader
	data []byte
}

func (m memBlob) Size() int64  { return m.Reader.Size() }
func (m memBlob) Close() error { return nil }
