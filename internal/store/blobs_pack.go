package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Pack files (SQLite). A file per blob costs a file creation per message,
// and on ext4 that was more CPU than parsing the message. So a blob of up
// to maxPacked bytes is appended to the current pack file instead; Sync
// flushes the packs written since the last Sync (before the commit of the
// rows that name their blobs), and the blob's place (pack, offset, size)
// is a row of blob_locations written in that same transaction
// (Tx.keepBlob). Until then this process keeps the place in memory, so a
// blob can be read back (to parse it) before its row commits. Bytes whose
// row never commits (a batch given up, a crash) stay unreferenced in the
// pack, as an unreferenced blob file did. Packs are append-only: blobs
// are never deleted.

// maxPacked is the largest blob kept in a pack; larger ones are files.
const maxPacked = 4 << 20

// packLimit is the size past which a new pack file is started.
var packLimit int64 = 256 << 20

// blobPlace is where a blob is in the packs.
type blobPlace struct {
	pack, offset, size int64
}

type packBlobs struct {
	dir string

	mu       sync.Mutex
	cur      *os.File // the pack appended to, nil until the first Put
	curID    int64
	curSize  int64
	unsynced []*os.File // packs written since the last Sync (cur among them)
	newPack  bool       // a pack was created since the last Sync (its folder entry)
	lastID   int64

	pmu     sync.Mutex
	pending map[string]*pendingPlace // put by this process, row not yet known to be committed
}

type pendingPlace struct {
	place blobPlace
	refs  int
}

func openPackBlobs(dir string) (*packBlobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pack folder: %w", err)
	}
	p := &packBlobs{dir: dir, pending: map[string]*pendingPlace{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read pack folder: %w", err)
	}
	for _, e := range entries {
		if id, ok := packID(e.Name()); ok && id > p.lastID {
			p.lastID = id
		}
	}
	return p, nil
}

func packID(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".pack")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

func (p *packBlobs) path(id int64) string {
	return filepath.Join(p.dir, fmt.Sprintf("%08d.pack", id))
}

// put appends data, whose SHA-256 is sum, to the current pack (unless this
// process has it pending already) and takes a reference to its place.
func (p *packBlobs) put(sum string, data []byte) error {
	p.pmu.Lock()
	if pp, ok := p.pending[sum]; ok {
		pp.refs++
		p.pmu.Unlock()
		return nil
	}
	p.pmu.Unlock()
	place, err := p.append(data)
	if err != nil {
		return err
	}
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if pp, ok := p.pending[sum]; ok {
		pp.refs++ // put meanwhile by another caller: its bytes serve both
		return nil
	}
	p.pending[sum] = &pendingPlace{place: place, refs: 1}
	return nil
}

func (p *packBlobs) append(data []byte) (blobPlace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.curSize+int64(len(data)) > packLimit && p.curSize > 0 {
		if err := p.rotate(); err != nil {
			return blobPlace{}, err
		}
	}
	n, err := p.cur.WriteAt(data, p.curSize)
	if err != nil || n != len(data) {
		// The pack's end is uncertain: later blobs go to a new one.
		p.cur = nil
		return blobPlace{}, fmt.Errorf("write blob to pack %d: %w", p.curID, errors.Join(err, io.ErrShortWrite))
	}
	place := blobPlace{pack: p.curID, offset: p.curSize, size: int64(len(data))}
	p.curSize += int64(len(data))
	if len(p.unsynced) == 0 || p.unsynced[len(p.unsynced)-1] != p.cur {
		p.unsynced = append(p.unsynced, p.cur)
	}
	return place, nil
}

// rotate starts a new pack file (p.mu held). The previous one stays open
// until the next Sync has flushed it.
func (p *packBlobs) rotate() error {
	// Another process on the same data folder may take numbers too.
	id := p.lastID + 1
	f, err := os.OpenFile(p.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	for tries := 0; errors.Is(err, os.ErrExist) && tries < 1000; tries++ {
		id++
		f, err = os.OpenFile(p.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("create pack %d: %w", id, err)
	}
	p.lastID, p.cur, p.curID, p.curSize, p.newPack = id, f, id, 0, true
	return nil
}

// sync flushes every pack written since the last sync, and the folder when
// a pack was created.
func (p *packBlobs) sync() error {
	p.mu.Lock()
	files, newPack, cur := p.unsynced, p.newPack, p.cur
	p.unsynced, p.newPack = nil, false
	p.mu.Unlock()
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Sync())
	}
	if newPack {
		if d, err := os.Open(p.dir); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, d.Sync())
			d.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.mu.Lock()
		p.unsynced = append(files, p.unsynced...)
		p.newPack = p.newPack || newPack
		p.mu.Unlock()
		return fmt.Errorf("flush packs to disk: %w", err)
	}
	for _, f := range files {
		if f != cur {
			f.Close() // a finished pack: nothing more is written to it
		}
	}
	return nil
}

// release drops a reference put took.
func (p *packBlobs) release(sum string) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if pp, ok := p.pending[sum]; ok {
		if pp.refs--; pp.refs <= 0 {
			delete(p.pending, sum)
		}
	}
}

// pendingPlace returns the place of a blob this process put and holds.
func (p *packBlobs) pendingPlace(sum string) (blobPlace, bool) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	pp, ok := p.pending[sum]
	if !ok {
		return blobPlace{}, false
	}
	return pp.place, true
}

// open opens the blob at place.
func (p *packBlobs) open(place blobPlace) (Blob, error) {
	f, err := os.Open(p.path(place.pack))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pack %d is missing: %w", place.pack, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return &packBlob{SectionReader: io.NewSectionReader(f, place.offset, place.size), f: f}, nil
}

// lookup finds a blob's place: pending in this process, else its row.
func (p *packBlobs) lookup(ctx context.Context, db *sql.DB, sum string) (blobPlace, bool, error) {
	if place, ok := p.pendingPlace(sum); ok {
		return place, true, nil
	}
	if db == nil {
		return blobPlace{}, false, nil
	}
	var place blobPlace
	err := db.QueryRowContext(ctx, `SELECT pack, offset, size FROM blob_locations WHERE sha256 = ?`, sum).
		Scan(&place.pack, &place.offset, &place.size)
	if errors.Is(err, sql.ErrNoRows) {
		return blobPlace{}, false, nil
	}
	if err != nil {
		return blobPlace{}, false, fmt.Errorf("find blob %s: %w", sum, err)
	}
	return place, true, nil
}

// packBlob is a blob read from a pack.
type packBlob struct {
	*io.SectionReader
	f *os.File
}

func (b *packBlob) Close() error { return b.f.Close() }

// putPacked reads r: up to maxPacked bytes go to a pack; a longer blob
// becomes a file of its own. It returns the blob's SHA-256 and size, and
// whether it was packed.
func (b *Blobs) putPacked(r io.Reader) (sum string, size int64, packed bool, err error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxPacked+1))
	if err != nil {
		return "", 0, false, fmt.Errorf("read blob: %w", err)
	}
	if n > maxPacked {
		sum, size, err = b.files.Put(io.MultiReader(&buf, r))
		return sum, size, false, err
	}
	h := sha256.Sum256(buf.Bytes())
	sum = hex.EncodeToString(h[:])
	if err := b.packs.put(sum, buf.Bytes()); err != nil {
		return "", 0, false, err
	}
	return sum, n, true, nil
}
