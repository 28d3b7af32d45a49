package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Blobs keeps raw messages (and, from before schema 19, decoded
// attachments), content-addressed by the hex SHA-256 of their bytes.
//
// On SQLite a blob is in a pack file in the data folder (up to 4 MiB:
// blobs_pack.go) or a file of its own. On PostgreSQL it is rows
// of blobs and blob_chunks, so every process on every host serves every
// blob. There Put writes to a local spool first (the raw message arrives
// before the transaction that stores it, and is parsed meanwhile), and the
// store copies a spooled blob into the database in the transaction of the
// row that names it (InsertMessage, Quarantine, PutBlob): no row names a
// missing blob, and a rolled-back transaction leaves no blob behind. Put
// takes a reference to the spooled blob (in memory, or a file when large:
// blobs_spool.go); Release drops it, and the blob goes with the last one.
//
// Blob files from before schema 19 stay readable on PostgreSQL until
// `postdesk blobs move` has copied them into the database.
type Blobs struct {
	files *fileBlobs // SQLite: blobs from before 23 and larger ones; PostgreSQL: files from before 19, until moved
	packs *packBlobs // SQLite only: blobs up to maxPacked (see blobs_pack.go)
	index *sql.DB    // SQLite only: the pool blob_locations is read with (nil: pending blobs only)
	// lookup is index's statement for a committed place (lookupPlace).
	lookup     *sql.Stmt
	lookupOnce sync.Once
	spool      *spool  // PostgreSQL only
	pg         *sql.DB // PostgreSQL only: the pool blobs are read with

	syncMu sync.Mutex // one Sync at a time
}

// Blob is one stored blob, open for reading.
type Blob interface {
	io.ReadSeekCloser
	// Size is the blob's length in bytes.
	Size() int64
}

// OpenBlobs opens (creating) a file blob store in dir, as SQLite uses:
// packs in dir/packs, larger blobs (and those from before schema 23) as
// files. Without the database (Store.Open sets it) a packed blob can be
// read back only while this process holds it (Put to Release).
func OpenBlobs(dir string) (*Blobs, error) {
	files, err := openFileBlobs(dir)
	if err != nil {
		return nil, err
	}
	packs, err := openPackBlobs(filepath.Join(dir, "packs"))
	if err != nil {
		return nil, err
	}
	return &Blobs{files: files, packs: packs}, nil
}

// openDatabaseBlobs opens the blobs of a PostgreSQL store: the spool in
// dataDir, and the blob folder from before schema 19 when there is one.
func openDatabaseBlobs(dataDir string, pg *sql.DB) (*Blobs, error) {
	sp, err := openSpool(filepath.Join(dataDir, "blob-spool"))
	if err != nil {
		return nil, err
	}
	b := &Blobs{spool: sp, pg: pg}
	legacy := filepath.Join(dataDir, "blobs")
	if _, err := os.Stat(legacy); err == nil {
		if b.files, err = openFileBlobs(legacy); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// InDatabase reports whether blobs are kept in the database (PostgreSQL).
func (b *Blobs) InDatabase() bool { return b.pg != nil }

// Put streams r into the store and returns its hex SHA-256 and size. On
// SQLite the blob is durable after the next Sync; on PostgreSQL it is
// spooled until a row naming it commits, and the caller must Release it.
func (b *Blobs) Put(r io.Reader) (sum string, size int64, err error) {
	if b.spool != nil {
		return b.spool.put(r)
	}
	sum, size, _, err = b.putPacked(r)
	return sum, size, err
}

// Release drops the reference Put took: on PostgreSQL the spooled blob,
// on SQLite the place of a packed blob kept in memory until its row
// committed.
func (b *Blobs) Release(sum string) {
	switch {
	case b.spool != nil:
		b.spool.release(sum)
	case b.packs != nil:
		b.packs.release(sum)
	}
}

// Sync makes every file blob written so far durable. Call it before
// committing rows that name new blobs. On PostgreSQL the commit itself
// makes them durable, and Sync does nothing.
func (b *Blobs) Sync() error {
	if b.spool != nil {
		return nil
	}
	// One at a time: a Sync that found nothing left to flush must not
	// return while another, which took what it wrote, is still flushing.
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	return errors.Join(b.files.Sync(), b.packs.sync())
}

// Open opens a blob for reading. A missing blob is ErrNotFound.
func (b *Blobs) Open(ctx context.Context, sum string) (Blob, error) {
	if !validSum(sum) {
		return nil, ErrNotFound
	}
	if b.pg == nil {
		place, ok, err := b.packs.lookup(ctx, b.index, sum)
		if err != nil {
			return nil, err
		}
		if ok {
			return b.packs.open(place)
		}
		return openFile(b.files.path(sum))
	}
	if f, err := b.spool.open(sum); err == nil {
		return f, nil
	}
	blob, err := openDatabaseBlob(ctx, b.pg, sum)
	if !errors.Is(err, ErrNotFound) {
		return blob, err
	}
	if b.files == nil {
		return nil, ErrNotFound
	}
	return openFile(b.files.path(sum))
}

// openLocal opens a blob the database does not hold yet: spooled, or a
// file from before schema 19.
func (b *Blobs) openLocal(sum string) (Blob, error) {
	f, err := b.spool.open(sum)
	if errors.Is(err, ErrNotFound) && b.files != nil {
		f, err = openFile(b.files.path(sum))
	}
	return f, err
}

// fileBlob is a blob kept as a file.
type fileBlob struct {
	*os.File
	size int64
}

func (f fileBlob) Size() int64 { return f.size }

func openFile(path string) (Blob, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return fileBlob{File: f, size: st.Size()}, nil
}
