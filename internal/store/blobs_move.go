package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrBlobsAreFiles is returned by MoveBlobs on SQLite, whose blobs stay
// in the data folder (pack files, and files of their own).
var ErrBlobsAreFiles = errors.New("on SQLite blobs stay in the data folder; only a PostgreSQL store keeps them in the database")

// MoveProgress is how far MoveBlobs has come.
type MoveProgress struct {
	Total int   // blobs named by rows and not in the database at the start
	Moved int   // copied into the database so far
	Bytes int64 // their bytes
	// Missing are blobs a row names that neither the database nor the
	// data folder holds (lost before the move; their rows stay).
	Missing int
	// Removed are files deleted once the database held their blob;
	// Unnamed are files no row names, left in place.
	Removed, Unnamed int
}

// namedBlobs are the blobs rows name: raw sources and, from before schema
// 19, attachments kept as blobs of their own.
const namedBlobs = `SELECT raw_sha256 AS sha FROM messages UNION SELECT sha256 FROM attachments WHERE part_blob = ''
	UNION SELECT raw_sha256 FROM quarantine`

// MoveBlobs copies, on PostgreSQL, the blob files of the data folder that
// rows name into the database, one blob per transaction, and deletes each
// file once its copy has committed; then it deletes the files whose blob
// the database holds already. It is idempotent and resumable: run again
// after an interruption, it carries on where it stopped. progress is
// called after each blob.
func (db *DB) MoveBlobs(ctx context.Context, progress func(MoveProgress)) (MoveProgress, error) {
	var p MoveProgress
	b := db.blobs
	if !b.InDatabase() {
		return p, ErrBlobsAreFiles
	}
	missing := ` FROM (` + namedBlobs + `) s WHERE s.sha > ? AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = s.sha)`
	if err := db.queryRow(ctx, `SELECT COUNT(*)`+missing, "").Scan(&p.Total); err != nil {
		return p, fmt.Errorf("count blobs to move: %w", err)
	}
	for last := ""; ; {
		sums, err := db.moveBatch(ctx, `SELECT s.sha`+missing+` ORDER BY s.sha LIMIT 200`, last)
		if err != nil || len(sums) == 0 {
			if err == nil {
				err = db.removeMovedFiles(ctx, &p)
			}
			return p, err
		}
		last = sums[len(sums)-1]
		for _, sum := range sums {
			n, err := db.moveBlob(ctx, sum)
			switch {
			case errors.Is(err, ErrNotFound):
				p.Missing++
			case err != nil:
				return p, err
			default:
				p.Moved++
				p.Bytes += n
			}
			if progress != nil {
				progress(p)
			}
		}
	}
}

func (db *DB) moveBatch(ctx context.Context, query, after string) ([]string, error) {
	rows, err := db.query(ctx, query, after)
	if err != nil {
		return nil, fmt.Errorf("list blobs to move: %w", err)
	}
	defer rows.Close()
	var sums []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		sums = append(sums, s)
	}
	return sums, rows.Err()
}

// moveBlob copies one blob file into the database and deletes the file.
func (db *DB) moveBlob(ctx context.Context, sum string) (int64, error) {
	files := db.blobs.files
	if files == nil || !validSum(sum) {
		return 0, ErrNotFound
	}
	f, err := openFile(files.path(sum))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	err = db.Write(ctx, func(tx *Tx) error {
		_, err := tx.copyBlobIn(ctx, sum, f)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("move blob %s: %w", sum, err)
	}
	os.Remove(files.path(sum))
	return f.Size(), nil
}

// removeMovedFiles deletes the files whose blob the database holds (a move
// interrupted between a commit and the file's removal leaves some) and
// counts the files no row names.
func (db *DB) removeMovedFiles(ctx context.Context, p *MoveProgress) error {
	files := db.blobs.files
	if files == nil {
		return nil
	}
	return filepath.WalkDir(files.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		sum := d.Name()
		if !validSum(sum) {
			return nil
		}
		var x int
		err = one(db.queryRow(ctx, `SELECT 1 FROM blobs WHERE sha256 = ?`, sum).Scan(&x))
		switch {
		case err == nil:
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove moved blob file: %w", err)
			}
			p.Removed++
		case errors.Is(err, ErrNotFound):
			p.Unnamed++
		default:
			return fmt.Errorf("look for blob %s: %w", sum, err)
		}
		return nil
	})
}
