package store

import (
	"context"
	"fmt"
	"io"

	"github.com/postdesk/postdesk/internal/mailmsg"
)

// OpenAttachment opens an attachment's decoded content: its part of the
// raw message, decoded as it is read, or (an agent's upload, a row from
// before schema 19) the blob of its own. A missing blob is ErrNotFound.
func (db *DB) OpenAttachment(ctx context.Context, a Attachment) (Blob, error) {
	if a.Part.Blob == "" {
		return db.blobs.Open(ctx, a.SHA256)
	}
	src, err := db.blobs.Open(ctx, a.Part.Blob)
	if err != nil {
		return nil, err
	}
	if a.Part.Offset < 0 || a.Part.Length < 0 || a.Part.Offset+a.Part.Length > src.Size() {
		src.Close()
		return nil, fmt.Errorf("open attachment %d: its part (%d+%d) lies outside message source %s", a.ID, a.Part.Offset, a.Part.Length, a.Part.Blob)
	}
	return &partBlob{src: src, part: a.Part, size: a.Size}, nil
}

// partBlob reads a MIME part's decoded content from its raw message. It
// seeks by decoding again from the part's start (Range requests of
// attachments are rare; the decode streams either way).
type partBlob struct {
	src       Blob
	part      Part
	size      int64 // decoded, as recorded at ingest
	r         io.Reader
	cur, want int64
}

func (p *partBlob) Size() int64 { return p.size }

func (p *partBlob) Read(b []byte) (int, error) {
	if p.r == nil || p.want < p.cur {
		if _, err := p.src.Seek(p.part.Offset, io.SeekStart); err != nil {
			return 0, fmt.Errorf("read attachment: %w", err)
		}
		p.r, p.cur = mailmsg.DecodeTransfer(p.part.Encoding, io.LimitReader(p.src, p.part.Length)), 0
	}
	if p.want > p.cur {
		n, err := io.CopyN(io.Discard, p.r, p.want-p.cur)
		p.cur += n
		if err != nil {
			p.want = p.cur
			return 0, err
		}
	}
	n, err := p.r.Read(b)
	p.cur += int64(n)
	p.want = p.cur
	return n, err
}

func (p *partBlob) Seek(offset int64, whence int) (int64, error) {
	pos, err := seekTo(p.want, p.size, offset, whence, "attachment")
	if err == nil {
		p.want = pos
	}
	return pos, err
}

func (p *partBlob) Close() error { return p.src.Close() }
