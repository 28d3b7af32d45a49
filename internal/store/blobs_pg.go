package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// BlobChunkSize is the most bytes one blob_chunks row holds.
const BlobChunkSize = 256 << 10

// databaseBlob reads a blob from PostgreSQL one chunk at a time.
type databaseBlob struct {
	ctx   context.Context
	db    *sql.DB
	sum   string
	size  int64
	pos   int64
	seq   int64 // the chunk in buf, -1 for none
	buf   []byte
	close bool
}

func openDatabaseBlob(ctx context.Context, db *sql.DB, sum string) (Blob, error) {
	b := &databaseBlob{ctx: ctx, db: db, sum: sum, seq: -1}
	err := db.QueryRowContext(ctx, `SELECT size FROM blobs WHERE sha256 = $1`, sum).Scan(&b.size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", sum, err)
	}
	return b, nil
}

func (b *databaseBlob) Size() int64 { return b.size }

func (b *databaseBlob) Read(p []byte) (int, error) {
	if b.close {
		return 0, errors.New("read blob: closed")
	}
	if b.pos >= b.size {
		return 0, io.EOF
	}
	seq := b.pos / BlobChunkSize
	if seq != b.seq {
		b.buf = b.buf[:0]
		err := b.db.QueryRowContext(b.ctx, `SELECT data FROM blob_chunks WHERE sha256 = $1 AND seq = $2`, b.sum, seq).Scan(&b.buf)
		if err != nil {
			b.seq = -1
			return 0, fmt.Errorf("read blob %s chunk %d: %w", b.sum, seq, err)
		}
		b.seq = seq
	}
	off := b.pos - seq*BlobChunkSize
	if off >= int64(len(b.buf)) {
		return 0, fmt.Errorf("read blob %s: chunk %d is short", b.sum, seq)
	}
	n := copy(p, b.buf[off:])
	b.pos += int64(n)
	return n, nil
}

func (b *databaseBlob) Seek(offset int64, whence int) (int64, error) {
	pos, err := seekTo(b.pos, b.size, offset, whence, "blob")
	if err == nil {
		b.pos = pos
	}
	return pos, err
}

// seekTo is io.Seeker's arithmetic for a reader at pos of size bytes: the
// new position, or an error for a negative one (what names the reader).
func seekTo(pos, size, offset int64, whence int, what string) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += pos
	case io.SeekEnd:
		offset += size
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative position", what)
	}
	return offset, nil
}

func (b *databaseBlob) Close() error {
	b.close, b.buf = true, nil
	return nil
}

// PutBlob stores r as a blob named by a row written in tx (a reply's raw
// source, an attachment an agent uploaded). On PostgreSQL the blob is in
// the database when tx commits; on SQLite, call Blobs().Sync before then.
func (tx *Tx) PutBlob(ctx context.Context, r io.Reader) (sum string, size int64, err error) {
	b := tx.db.blobs
	if sum, size, err = b.Put(r); err != nil {
		return "", 0, err
	}
	defer b.Release(sum)
	return sum, size, tx.keepBlob(ctx, sum)
}

// keepBlob makes sure, on PostgreSQL, that the database holds blob sum
// when tx commits, copying it from the spool (or a file from before schema
// 19) when it does not. On SQLite it records the place of a packed blob
// (blob_locations) when this process put it and has not released it.
func (tx *Tx) keepBlob(ctx context.Context, sum string) error {
	b := tx.db.blobs
	if sum == "" {
		return nil
	}
	if b.pg == nil {
		return tx.keepPacked(ctx, sum)
	}
	// The local copy first: a new blob (most are) then costs one
	// statement fewer, as copyBlobIn's insert says whether the database
	// has it already.
	f, err := b.openLocal(sum)
	if err != nil {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM blobs WHERE sha256 = ?`, sum).Scan(&one); err == nil {
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look for blob %s: %w", sum, err)
		}
		return fmt.Errorf("keep blob %s (in neither the database nor this process's spool): %w", sum, err)
	}
	defer f.Close()
	_, err = tx.copyBlobIn(ctx, sum, f)
	return err
}

// copyBlobIn streams r, whose content must hash to sum, into the database
// in chunks. It reports false when another transaction has stored the
// blob meanwhile (then nothing is copied).
func (tx *Tx) copyBlobIn(ctx context.Context, sum string, r Blob) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING`,
		sum, r.Size(), ms(time.Now()))
	if err != nil {
		return false, fmt.Errorf("store blob %s: %w", sum, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err // stored by a transaction that committed meanwhile
	}
	if m, ok := r.(memBlob); ok {
		// Held by this process's spool, hashed as it was put: written
		// from memory as it is.
		for seq := 0; seq == 0 || seq*BlobChunkSize < len(m.data); seq++ {
			chunk := m.data[seq*BlobChunkSize : min((seq+1)*BlobChunkSize, len(m.data))]
			if chunk == nil {
				chunk = []byte{} // an empty blob: pgx would send nil as NULL
			}
			if _, err := tx.exec(ctx, `INSERT INTO blob_chunks (sha256, seq, data) VALUES (?, ?, ?)`, sum, seq, chunk); err != nil {
				return false, fmt.Errorf("store blob %s chunk %d: %w", sum, seq, err)
			}
		}
		return true, nil
	}
	h := sha256.New()
	bp := chunkBuffers.Get().(*[]byte)
	defer chunkBuffers.Put(bp)
	buf := *bp
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 || seq == 0 {
			h.Write(buf[:n])
			size += int64(n)
			if _, err := tx.exec(ctx, `INSERT INTO blob_chunks (sha256, seq, data) VALUES (?, ?, ?)`, sum, seq, buf[:n]); err != nil {
				return false, fmt.Errorf("store blob %s chunk %d: %w", sum, seq, err)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("read blob %s: %w", sum, err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum || size != r.Size() {
		return false, fmt.Errorf("store blob %s: the file holds other content (%d bytes, sha256 %s): %w", sum, size, got, ErrBlobCorrupt)
	}
	return true, nil
}

// chunkBuffers hold one chunk of a blob copied in from a file.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, BlobChunkSize); return &b }}

// ErrBlobCorrupt is returned when a blob's bytes do not hash to its name.
var ErrBlobCorrupt = errors.New("blob content does not match its name")
