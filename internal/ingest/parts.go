package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// Parse reads a stored message back, parses it, and finds each
// attachment's part in it (attachments are served from the raw message,
// not kept twice; see locateParts). It writes nothing to the database and
// may run concurrently.
func (in *Ingester) Parse(ctx context.Context, s Stored) (*Prepared, error) {
	f := s.kept.Open()
	if f == nil {
		var err error
		if f, err = in.db.Blobs().Open(ctx, s.RawSHA256); err != nil {
			return nil, fmt.Errorf("reopen raw message: %w", err)
		}
	}
	defer f.Close()
	unsought := false
	// Only forwards from our agents and support addresses are recovered,
	// so only theirs are searched for originals (decide searches again
	// when the transaction finds the sender ours after all: seekForwards).
	msg, forwards, own, err := in.parseRaw(ctx, f, func(m *mailmsg.Message) bool {
		unsought = !in.fromOurs(ctx, m)
		return !unsought
	})
	if err != nil {
		return nil, err
	}
	p := &Prepared{Msg: msg, Forwards: forwards, RawSHA256: s.RawSHA256, RawSize: s.RawSize, ReceivedAt: in.now().UTC(), ownBlobs: own,
		forwardsUnsought: unsought}
	p.DedupeKey = store.DedupeKey(msg.MessageID, s.RawSHA256)
	if !in.db.DefersBulkSearch() {
		// Folded here, beside the writer; on SQLite a batch of many
		// leaves its documents to the background indexer, and the writer
		// folds the text of the few that come one at a time.
		p.search = store.NewSearchText(msg.Text)
	}
	if err := in.locateParts(ctx, f, p); err != nil {
		in.Release(Stored{}, p)
		return nil, err
	}
	return p, nil
}

// parseRaw parses a raw message and, where look says so (nil: always),
// searches it for forwarded originals; an attached original's own files
// are inside its part, kept as blobs of their own (own) so the recovered
// email has them (they were dropped, and the original arriving later was a
// duplicate).
func (in *Ingester) parseRaw(ctx context.Context, f io.Reader, look func(*mailmsg.Message) bool) (*mailmsg.Message, []mailmsg.Forward, []string, error) {
	blobs := in.db.Blobs()
	var own []string
	msg, forwards, err := mailmsg.ParseForwards(f, mailmsg.ParseOptions{
		LookForForwards: look,
		ForwardedAttachment: func(a *mailmsg.Attachment, content io.Reader) error {
			sum, _, err := blobs.Put(content)
			if err == nil {
				own = append(own, sum)
			}
			return err
		},
	})
	if err != nil {
		for _, sum := range own {
			blobs.Release(sum)
		}
		return nil, nil, nil, fmt.Errorf("parse message: %w", err)
	}
	return msg, forwards, own, nil
}

// seekForwards searches an email Parse did not search for forwarded
// originals, its sender not being ours by Parse's copy of our addresses
// (read once a second: an agent or mailbox added within it), now that the
// transaction found the sender ours after all. Without it, that agent's
// forward became a ticket from the agent, and the customer's original,
// arriving later, a second one.
func (in *Ingester) seekForwards(ctx context.Context, p *Prepared) error {
	f, err := in.db.Blobs().Open(ctx, p.RawSHA256)
	if err != nil {
		return fmt.Errorf("reopen raw message: %w", err)
	}
	defer f.Close()
	_, forwards, own, err := in.parseRaw(ctx, f, nil)
	if err != nil {
		return err
	}
	p.Forwards, p.ownBlobs, p.forwardsUnsought = forwards, append(p.ownBlobs, own...), false
	return nil
}

// Prepare stores and parses a message (Store, then Parse). The caller
// Releases the message once it is applied or given up.
func (in *Ingester) Prepare(ctx context.Context, raw io.Reader) (*Prepared, error) {
	s, err := in.Store(raw)
	if err != nil {
		return nil, err
	}
	p, err := in.Parse(ctx, s)
	if err != nil {
		in.Release(s, nil)
	}
	return p, err
}

// locateParts records where each attachment lies in the raw message, so
// the raw message is its one copy: one more read of the source finds the
// parts' spans, and each span is checked to hold the bytes the parser
// decoded (Span.Holds; where the parser noted none, the span is decoded
// and checked against the hash the parser took). An attachment whose span does not check out (mail broken
// in a way the parser forgives and the span finder does not) is stored as
// a blob of its own, as before schema 19, from one more parse.
func (in *Ingester) locateParts(ctx context.Context, raw store.Blob, p *Prepared) error {
	atts := p.Msg.Attachments
	if len(atts) == 0 {
		return nil
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("find attachments: %w", err)
	}
	spans, err := mailmsg.PartSpans(raw)
	if err != nil {
		return fmt.Errorf("find attachments: %w", err)
	}
	p.Parts = make([]store.Part, len(atts))
	missing := map[string]bool{}
	for i, a := range atts {
		sp, ok := spans[a.Part]
		if ok {
			ok, err = spanHoldsQuick(raw, sp, &atts[i])
			if err != nil {
				return fmt.Errorf("find attachment %q: %w", a.Filename, err)
			}
		}
		if !ok {
			missing[a.Part] = true
			continue
		}
		p.Parts[i] = store.Part{Blob: p.RawSHA256, Offset: sp.Offset, Length: sp.Length, Encoding: sp.Encoding}
	}
	if len(missing) == 0 {
		return nil
	}
	return in.storeOwnBlobs(ctx, raw, p, missing)
}

// spanHoldsQuick reports whether a span is the attachment: at the cost of
// a read where the parser noted the bytes it decoded (Span.Holds), else, or
// when those bytes differ (a relay's mixed line ends: a CR the parser
// read and the span finder leaves out, which base64 skips), by decoding
// the span (spanHolds).
func spanHoldsQuick(raw store.Blob, sp mailmsg.Span, a *mailmsg.Attachment) (bool, error) {
	if _, ok, err := sp.Holds(raw, a); ok || err != nil {
		return ok, err
	}
	return spanHolds(raw, sp, *a)
}

// spanHolds decodes a span and reports whether it is the attachment.
func spanHolds(raw store.Blob, sp mailmsg.Span, a mailmsg.Attachment) (bool, error) {
	if sp.Offset+sp.Length > raw.Size() {
		return false, nil
	}
	if _, err := raw.Seek(sp.Offset, io.SeekStart); err != nil {
		return false, err
	}
	h := sha256.New()
	n, err := io.Copy(h, mailmsg.DecodeTransfer(sp.Encoding, io.LimitReader(raw, sp.Length)))
	if err != nil {
		return false, err
	}
	return n == a.Size && hex.EncodeToString(h.Sum(nil)) == a.SHA256, nil
}

// storeOwnBlobs parses the message again and stores the decoded content
// of the attachments in missing (by part number) as blobs of their own.
func (in *Ingester) storeOwnBlobs(ctx context.Context, raw store.Blob, p *Prepared, missing map[string]bool) error {
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("store attachments: %w", err)
	}
	blobs := in.db.Blobs()
	_, err := mailmsg.Parse(raw, mailmsg.ParseOptions{
		Attachment: func(a *mailmsg.Attachment, content io.Reader) error {
			if !missing[a.Part] {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			sum, _, err := blobs.Put(content)
			if err == nil {
				p.ownBlobs = append(p.ownBlobs, sum)
			}
			return err
		},
	})
	if err != nil {
		return fmt.Errorf("store attachments: %w", err)
	}
	return nil
}

// Release lets the blob store drop the local copies a Store and a Parse
// took (on PostgreSQL, the spooled blobs; on SQLite it does nothing).
// Call it once the message is committed, or given up; either may be zero.
func (in *Ingester) Release(s Stored, p *Prepared) {
	s.kept.Drop()
	blobs := in.db.Blobs()
	blobs.Release(s.RawSHA256)
	if p != nil {
		for _, sum := range p.ownBlobs {
			blobs.Release(sum)
		}
		p.ownBlobs = nil
	}
}
