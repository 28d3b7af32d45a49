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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	unsynced []openPack        // packs written since the last sync (cur among them)
	durable  map[int64]int64   // pack -> bytes known flushed to disk
	poisoned map[int64]bool    // packs whose flush failed: their places are never committed
	closed   map[*os.File]bool // packs closed by a sync while queued for the next one
	newPack  bool              // a pack was created since the last sync (its folder entry)
	lastID   int64

	pmu     sync.Mutex
	pending map[string]*pendingPlace // put by this process, row not yet known to be committed

	// flushing, in tests, runs in sync between taking the packs to flush
	// and flushing them (when puts and rotations can come in between).
	flushing func()
}

// openPack is a pack file written since the last sync.
type openPack struct {
	f  *os.File
	id int64
}

type pendingPlace struct {
	place blobPlace
	refs  int
}

func openPackBlobs(dir string) (*packBlobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pack folder: %w", err)
	}
	p := &packBlobs{dir: dir, pending: map[string]*pendingPlace{}, durable: map[int64]int64{}, poisoned: map[int64]bool{},
		closed: map[*os.File]bool{}}
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
// process holds it pending already, in a pack that did not fail) and takes
// a reference to its place.
func (p *packBlobs) put(sum string, data []byte) error {
	p.pmu.Lock()
	if pp, ok := p.pending[sum]; ok && !p.isPoisoned(pp.place.pack) {
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
		pp.refs++
		if p.isPoisoned(pp.place.pack) {
			pp.place = place // written again, in a pack that can still be flushed
		}
		return nil
	}
	p.pending[sum] = &pendingPlace{place: place, refs: 1}
	return nil
}

func (p *packBlobs) isPoisoned(id int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.poisoned[id]
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
		// The pack's end stays where it was: the next blob overwrites
		// what part of this one was written (a full disk, say).
		return blobPlace{}, fmt.Errorf("write blob to pack %d: %w", p.curID, errors.Join(err, io.ErrShortWrite))
	}
	place := blobPlace{pack: p.curID, offset: p.curSize, size: int64(len(data))}
	p.curSize += int64(len(data))
	if len(p.unsynced) == 0 || p.unsynced[len(p.unsynced)-1].f != p.cur {
		p.unsynced = append(p.unsynced, openPack{f: p.cur, id: p.curID})
	}
	return place, nil
}

// rotate starts a new pack file (p.mu held). The previous one is closed
// now if it is flushed, else by the sync that flushes it.
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
	// The previous pack goes to the next sync, which closes it (a sync in
	// flight may be flushing it now).
	if old := p.cur; old != nil && !slices.ContainsFunc(p.unsynced, func(o openPack) bool { return o.f == old }) {
		p.unsynced = append(p.unsynced, openPack{f: old, id: p.curID})
	}
	p.lastID, p.cur, p.curID, p.curSize, p.newPack = id, f, id, 0, true
	return nil
}

// sync flushes every pack written since the last sync, and the folder when
// a pack was created. A pack whose flush fails is never trusted again
// (Linux reports a failed writeback once, and may drop the pages): its
// places are not committed, and blobs in it are written again when put.
func (p *packBlobs) sync() error {
	p.mu.Lock()
	var files []openPack
	for _, o := range p.unsynced {
		if !p.closed[o.f] {
			files = append(files, o)
		}
		delete(p.closed, o.f)
	}
	newPack := p.newPack
	ends := make([]int64, len(files))
	for i, o := range files {
		ends[i] = p.endOf(o)
	}
	p.unsynced, p.newPack = nil, false
	p.mu.Unlock()
	if p.flushing != nil {
		p.flushing()
	}
	var errs []error
	var dirErr error
	if newPack {
		if dirErr = fsync(p.dir); dirErr != nil {
			// The folder entry of a new pack: retried with the next sync.
			p.mu.Lock()
			p.newPack = true
			p.mu.Unlock()
			errs = append(errs, dirErr)
		}
	}
	for i, o := range files {
		err := o.f.Sync()
		p.mu.Lock()
		// again: flushed, but not counted yet (its folder entry may not
		// be on disk); the next sync flushes it, and the folder, again.
		again := false
		switch {
		case err != nil:
			p.poisoned[o.id] = true
			if p.cur == o.f {
				p.cur = nil
			}
			errs = append(errs, fmt.Errorf("pack %d: %w", o.id, err))
		case p.poisoned[o.id]:
		case dirErr != nil:
			again = true
			if !slices.ContainsFunc(p.unsynced, func(u openPack) bool { return u.f == o.f }) {
				p.unsynced = append([]openPack{o}, p.unsynced...)
			}
		default:
			// Each pack by its own flush: another's failure says nothing of it.
			p.durable[o.id] = max(p.durable[o.id], ends[i])
		}
		// A pack rotated away is finished, and closed here, unless it was
		// written past ends[i] after this sync took it (before the
		// rotation, which queued it again) or is to be flushed again:
		// closed, the next sync would skip it, and those blobs would never
		// count as flushed.
		closeIt := p.cur != o.f && (err != nil || !again && p.endOf(o) <= ends[i])
		if closeIt {
			// Finished (or failed): nothing more is written to it. A
			// rotation may have queued it for the next sync meanwhile.
			p.closed[o.f] = true
			o.f.Close()
		}
		p.mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flush packs to disk: %w", err)
	}
	return nil
}

// endOf is how far pack o is written (p.mu held).
func (p *packBlobs) endOf(o openPack) int64 {
	if o.f == p.cur {
		return p.curSize
	}
	if fi, err := o.f.Stat(); err == nil {
		return fi.Size()
	}
	return 0
}

// flushed reports whether place's bytes are known to be on disk, and
// whether its pack failed to flush.
func (p *packBlobs) flushed(place blobPlace) (ok, poisoned bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.poisoned[place.pack] {
		return false, true
	}
	return p.durable[place.pack] >= place.offset+place.size, false
}

// fsync flushes a file or folder, by its path, to disk.
func fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
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
	// A pack cut short (a copy-based backup that stopped early, a full
	// disk on restore) would give a short blob without an error.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if end := place.offset + place.size; fi.Size() < end {
		f.Close()
		return nil, fmt.Errorf("pack %d is cut short: it holds %d bytes, the blob ends at %d: %w", place.pack, fi.Size(), end, ErrBlobCorrupt)
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
	buf := putBuffers.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		putBuffers.Put(buf) // the pack has its own copy: WriteAt wrote it
	}()
	return b.packRead(buf, r)
}

// packRead is putPacked of buf's bytes followed by r's; buf holds them
// after, unless the blob was too large for a pack.
func (b *Blobs) packRead(buf *bytes.Buffer, r io.Reader) (sum string, size int64, packed bool, err error) {
	if _, err := io.Copy(buf, io.LimitReader(r, maxPacked+1-int64(buf.Len()))); err != nil {
		return "", 0, false, fmt.Errorf("read blob: %w", err)
	}
	n := int64(buf.Len())
	if n > maxPacked {
		sum, size, err = b.files.Put(io.MultiReader(buf, r))
		return sum, size, false, err
	}
	h := sha256.Sum256(buf.Bytes())
	sum = hex.EncodeToString(h[:])
	if _, pending := b.packs.pendingPlace(sum); !pending && b.index != nil {
		// Stored before (a message fetched again, the same attachment
		// mailed twice): its committed place serves, nothing is appended.
		var one int
		err := b.lookupPlace(sum).Scan(&one)
		if err == nil {
			return sum, n, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", 0, false, fmt.Errorf("look for blob %s: %w", sum, err)
		}
	}
	if err := b.packs.put(sum, buf.Bytes()); err != nil {
		return "", 0, false, err
	}
	return sum, n, true, nil
}

// putBuffers hold a blob read before it is packed: one per message
// fetched, up to 4 MiB, so they are reused rather than grown again.
var putBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// PutKept is Put that, on SQLite, may keep the blob's bytes in memory
// for one reading (Kept.Open): ingest parses each message it fetched
// right after storing it, and reopening the pack for it took a twentieth
// of a 10,000-message fetch's parse. It keeps blobs of up to keptMax
// while all kept blobs hold less than keptTotal; k is nil when it did not
// keep.
func (b *Blobs) PutKept(r io.Reader) (sum string, size int64, k *Kept, err error) {
	if b.spool != nil {
		sum, size, err = b.spool.put(r)
		return sum, size, nil, err
	}
	buf := putBuffers.Get().(*bytes.Buffer)
	n, err := io.Copy(buf, io.LimitReader(r, keptMax+1))
	if err != nil {
		buf.Reset()
		putBuffers.Put(buf)
		return "", 0, nil, fmt.Errorf("read blob: %w", err)
	}
	if n > keptMax || keptBytes.Add(n) > keptTotal {
		if n <= keptMax {
			keptBytes.Add(-n)
		}
		sum, size, _, err = b.packRead(buf, r)
		buf.Reset()
		putBuffers.Put(buf)
		return sum, size, nil, err
	}
	k = &Kept{buf: buf}
	sum, size, _, err = b.packRead(buf, eof{})
	if err != nil {
		k.Drop()
		return "", 0, nil, err
	}
	return sum, size, k, nil
}

// eof is an empty reader.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

const (
	keptMax   = 256 << 10
	keptTotal = 16 << 20
)

// keptBytes is what all Kept blobs hold.
var keptBytes atomic.Int64

// Kept is a blob's bytes held in memory by PutKept for one reading.
type Kept struct {
	buf  *bytes.Buffer
	done atomic.Bool
}

// Open returns the bytes as a Blob, the first time only (nil after, and
// for a nil Kept); closing it gives the memory back.
func (k *Kept) Open() Blob {
	if k == nil || !k.done.CompareAndSwap(false, true) {
		return nil
	}
	return &keptBlob{Reader: bytes.NewReader(k.buf.Bytes()), k: k}
}

// Drop gives the memory back if Open was not called (it may be, and a
// later Open returns nil).
func (k *Kept) Drop() {
	if k != nil && k.done.CompareAndSwap(false, true) {
		k.free()
	}
}

func (k *Kept) free() {
	keptBytes.Add(-int64(k.buf.Len()))
	k.buf.Reset()
	putBuffers.Put(k.buf)
	k.buf = nil
}

type keptBlob struct {
	*bytes.Reader
	k    *Kept
	once sync.Once
}

func (b *keptBlob) Close() error {
	b.once.Do(b.k.free)
	return nil
}

// lookupPlace asks the read pool for a blob's committed place, with a
// statement prepared once: one lookup per blob put, and modernc's SQLite
// compiles an unprepared statement at each call.
func (b *Blobs) lookupPlace(sum string) *sql.Row {
	b.lookupOnce.Do(func() {
		b.lookup, _ = b.index.Prepare(`SELECT 1 FROM blob_locations WHERE sha256 = ?`) // nil: unprepared below
	})
	if b.lookup == nil {
		return b.index.QueryRow(`SELECT 1 FROM blob_locations WHERE sha256 = ?`, sum)
	}
	return b.lookup.QueryRow(sum)
}

// keepPacked is keepBlob on SQLite: a blob this process holds in a pack
// gets its place's row, which commits only once its bytes are known to be
// on disk (awaitBlobs flushes them if the caller did not); any other blob
// must be there already, as a committed place or a file, or the row naming
// it is refused.
func (tx *Tx) keepPacked(ctx context.Context, sum string) error {
	b := tx.db.blobs
	place, ok := b.packs.pendingPlace(sum)
	if !ok {
		var one int
		err := tx.queryRow(ctx, `SELECT 1 FROM blob_locations WHERE sha256 = ?`, sum).Scan(&one)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for blob %s: %w", sum, err)
		}
		if _, err := os.Stat(b.files.path(sum)); err != nil {
			return fmt.Errorf("blob %s is neither held, nor in a pack, nor a file (released before this row committed?): %w", sum, ErrNotFound)
		}
		return nil
	}
	switch durable, poisoned := b.packs.flushed(place); {
	case poisoned:
		return fmt.Errorf("blob %s: its pack %d could not be flushed to disk", sum, place.pack)
	case !durable:
		// Flushed before the commit (awaitBlobs), by a sync that may be
		// running now: the transaction's work need not wait for it.
		tx.unflushed = append(tx.unflushed, place)
	}
	_, err := tx.exec(ctx, `INSERT INTO blob_locations (sha256, pack, offset, size) VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING`,
		sum, place.pack, place.offset, place.size)
	if err != nil {
		return fmt.Errorf("record the place of blob %s: %w", sum, err)
	}
	return nil
}

// awaitBlobs makes sure, before the transaction commits, that the packed
// blobs its rows name are on disk: a sync that was flushing them is waited
// for (Blobs.Sync runs one at a time), and one more flushes what none has.
func (tx *Tx) awaitBlobs() error {
	b := tx.db.blobs
	for _, place := range tx.unflushed {
		durable, poisoned := b.packs.flushed(place)
		if !durable && !poisoned {
			if err := b.Sync(); err != nil {
				return err
			}
			durable, _ = b.packs.flushed(place)
		}
		if !durable {
			return fmt.Errorf("a blob of pack %d could not be flushed to disk", place.pack)
		}
	}
	tx.unflushed = nil
	return nil
}
