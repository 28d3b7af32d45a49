package imapsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Limits of one body FETCH command: the messages a failed Handle leaves to
// drain and the window between handling and the after-processing action.
const (
	chunkMessages = 200
	chunkBytes    = 32 << 20
)

// Skip reasons given to Store.Skipped.
const ReasonTooOld = "older than the catch-up limit"

// meta is what the first phase learns of a message.
type meta struct {
	uid  uint32
	date time.Time
	size int64
}

type kind int

const (
	kindFull kind = iota
	kindHeader
	kindOld
)

// syncAll syncs every folder, the first one last so that it stays selected
// for IDLE.
func (s *session) syncAll(ctx context.Context) (int, error) {
	folders := append(slices.Clone(s.cfg.Folders[1:]), s.cfg.Folders[0])
	total := 0
	for _, f := range folders {
		n, err := s.syncFolder(ctx, f)
		total += n
		if err != nil {
			return total, fmt.Errorf("sync %s: %w", f, err)
		}
	}
	return total, nil
}

// syncFolder selects folder and hands over every message above the
// checkpoint, in UID order.
func (s *session) syncFolder(ctx context.Context, folder string) (fetched int, err error) {
	log := s.log.With("folder", folder)
	// RFC 9051 6.3.2 / 6.3.3: EXAMINE when we change nothing.
	readOnly := s.cfg.AfterProcessing == ActionLeave
	var sel *imap.SelectData
	err = s.wait(func() (err error) {
		sel, err = s.c.Select(folder, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("select: %w", err)
	}
	// RFC 9051 7.1: UIDVALIDITY is required in the SELECT response.
	uv := sel.UIDValidity
	if uv == 0 {
		return 0, errors.New("the server sent no UIDVALIDITY")
	}
	cp, err := s.st.Checkpoint(ctx, folder)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	cp.Folder = folder

	now := time.Now()
	cutoff := time.Time{}
	if s.cfg.MaxAge > 0 {
		cutoff = now.Add(-s.cfg.MaxAge)
	}
	report := true // report messages older than cutoff to Skipped
	switch {
	case cp.UIDValidity == 0:
		cp, err = s.firstConnect(ctx, folder, sel)
		if err != nil {
			return 0, err
		}
		if s.cfg.InitialDays == 0 {
			return 0, nil
		}
		// Older messages above the starting point are passed over
		// silently: the admin asked for InitialDays only.
		cutoff, report = now.AddDate(0, 0, -s.cfg.InitialDays), false
	case cp.UIDValidity != uv:
		// RFC 9051 2.3.1.1: UIDs of the old UIDVALIDITY mean nothing now.
		log.Warn("imap folder UIDVALIDITY changed; rescanning it", "old_uidvalidity", cp.UIDValidity, "uidvalidity", uv)
		if err := s.flush(ctx); err != nil {
			return 0, err
		}
		if err := s.st.Reset(ctx, folder, uv); err != nil {
			return 0, fmt.Errorf("reset checkpoint: %w", err)
		}
		cp = Checkpoint{Folder: folder, UIDValidity: uv}
	}
	if sel.NumMessages == 0 {
		return 0, nil
	}

	metas, err := s.fetchMeta(cp.LastUID)
	if err != nil {
		return 0, err
	}
	classify := func(m meta) kind {
		switch {
		case !cutoff.IsZero() && m.date.Before(cutoff):
			return kindOld
		case s.cfg.MaxMessageBytes > 0 && m.size > s.cfg.MaxMessageBytes:
			return kindHeader
		}
		return kindFull
	}
	for len(metas) > 0 {
		// The next run: messages of one kind, at most one chunk.
		k := classify(metas[0])
		n, size := 1, metas[0].size
		for n < len(metas) && n < chunkMessages && classify(metas[n]) == k {
			if k == kindFull && size+metas[n].size > chunkBytes {
				break
			}
			size += metas[n].size
			n++
		}
		run := metas[:n]
		metas = metas[n:]
		if k == kindOld {
			if err := s.passOver(ctx, cp, run, report); err != nil {
				return fetched, err
			}
			cp.LastUID = run[len(run)-1].uid
			continue
		}
		handled, err := s.fetchBodies(ctx, cp, run, k == kindHeader)
		if err == nil && len(handled) < len(run) {
			// UID FETCH silently omits expunged UIDs (RFC 9051 6.4.9).
			log.Warn("imap messages listed but not returned; expunged meanwhile?", "missing", len(run)-len(handled), "first_uid", run[0].uid)
		}
		fetched += len(handled)
		if len(handled) > 0 {
			cp.LastUID = handled[len(handled)-1]
		}
		// Handled messages get their action even when the run then failed.
		if aerr := s.afterProcessing(ctx, log, handled); aerr != nil {
			err = errors.Join(err, aerr)
		}
		if err != nil {
			return fetched, err
		}
	}
	if err := s.flush(ctx); err != nil {
		return fetched, err
	}
	if fetched > 0 {
		log.Info("imap messages fetched", "count", fetched, "last_uid", cp.LastUID)
	}
	return fetched, nil
}

// firstConnect sets the checkpoint of a folder never synced: past all mail
// when InitialDays is 0, else just below the first message of the last
// InitialDays days (UID SEARCH SINCE, RFC 9051 6.4.4; SINCE compares dates
// in the server's time zone, so the search starts a day earlier and the
// caller filters on INTERNALDATE).
func (s *session) firstConnect(ctx context.Context, folder string, sel *imap.SelectData) (Checkpoint, error) {
	cp := Checkpoint{Folder: folder, UIDValidity: sel.UIDValidity}
	var uids []imap.UID
	if s.cfg.InitialDays > 0 && sel.NumMessages > 0 {
		since := time.Now().AddDate(0, 0, -s.cfg.InitialDays-1)
		err := s.wait(func() error {
			data, err := s.c.UIDSearch(&imap.SearchCriteria{Since: since}, nil).Wait()
			if err == nil {
				uids = data.AllUIDs()
			}
			return err
		})
		if err != nil {
			return cp, fmt.Errorf("search recent messages: %w", err)
		}
	}
	switch {
	case len(uids) > 0:
		cp.LastUID = uint32(slices.Min(uids)) - 1
	case sel.UIDNext > 0:
		// RFC 9051 2.3.1.1: every new message gets a UID >= UIDNEXT.
		cp.LastUID = uint32(sel.UIDNext) - 1
	case sel.NumMessages > 0:
		last, err := s.lastUID()
		if err != nil {
			return cp, err
		}
		cp.LastUID = last
	}
	if err := s.st.Advance(ctx, cp); err != nil {
		return cp, fmt.Errorf("set first checkpoint: %w", err)
	}
	s.log.Info("imap folder first synced", "folder", folder, "uidvalidity", cp.UIDValidity, "start_uid", cp.LastUID+1, "initial_days", s.cfg.InitialDays)
	return cp, nil
}

// lastUID returns the UID of the last message, for a server that sent no
// UIDNEXT.
func (s *session) lastUID() (uint32, error) {
	var last uint32
	err := s.wait(func() error {
		msgs, err := s.c.Fetch(imap.SeqSet{{Start: 0, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
		for _, m := range msgs {
			last = max(last, uint32(m.UID))
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("fetch last uid: %w", err)
	}
	return last, nil
}

// fetchMeta returns UID, INTERNALDATE and RFC822.SIZE of the messages above
// lastUID, sorted by UID. "UID FETCH n:*" always includes the last message
// even when its UID is below n (RFC 9051 6.4.9, "*" is the largest UID in
// use), which is filtered out here.
func (s *session) fetchMeta(lastUID uint32) ([]meta, error) {
	var metas []meta
	err := s.wait(func() error {
		set := imap.UIDSet{{Start: imap.UID(lastUID + 1), Stop: 0}}
		cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, InternalDate: true, RFC822Size: true})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			buf, err := msg.Collect()
			if err != nil {
				cmd.Close()
				return err
			}
			if uint32(buf.UID) > lastUID {
				metas = append(metas, meta{uid: uint32(buf.UID), date: buf.InternalDate, size: buf.RFC822Size})
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("fetch uids above %d: %w", lastUID, err)
	}
	slices.SortFunc(metas, func(a, b meta) int { return int(int64(a.uid) - int64(b.uid)) })
	return metas, nil
}

// passOver moves the checkpoint past run, a range of messages older than
// the cutoff, reporting them to Skipped when report is set.
func (s *session) passOver(ctx context.Context, cp Checkpoint, run []meta, report bool) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	if report {
		uids := make([]uint32, len(run))
		for i, m := range run {
			uids[i] = m.uid
		}
		s.log.Warn("imap messages skipped: older than the catch-up limit", "folder", cp.Folder, "count", len(uids), "first_uid", uids[0], "max_age", s.cfg.MaxAge)
		if err := s.st.Skipped(ctx, cp.Folder, uids, ReasonTooOld); err != nil {
			return fmt.Errorf("report skipped: %w", err)
		}
	}
	cp.LastUID = run[len(run)-1].uid
	if err := s.st.Advance(ctx, cp); err != nil {
		return fmt.Errorf("advance checkpoint past skipped: %w", err)
	}
	return nil
}

// fetchBodies streams run's messages (BODY.PEEK[], or BODY.PEEK[HEADER]
// when headerOnly; PEEK keeps \Seen unset, RFC 9051 6.4.5) to Handle in UID
// order, and returns the UIDs Handle accepted.
func (s *session) fetchBodies(ctx context.Context, cp Checkpoint, run []meta, headerOnly bool) (handled []uint32, err error) {
	var set imap.UIDSet
	byUID := make(map[uint32]meta, len(run))
	for _, m := range run {
		set.AddNum(imap.UID(m.uid))
		byUID[m.uid] = m
	}
	section := &imap.FetchItemBodySection{Peek: true}
	if headerOnly {
		section.Specifier = imap.PartSpecifierHeader
	}
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	last := cp.LastUID
	var handleErr error
	for handleErr == nil {
		var msg *imapclient.FetchMessageData
		if err := s.wait(func() error { msg = cmd.Next(); return nil }); err != nil {
			return handled, err
		}
		if msg == nil {
			break
		}
		// go-imap routes a FETCH response to this command by its UID, so
		// the UID item comes before the body literal.
		var uid uint32
		for item := msg.Next(); item != nil && handleErr == nil; item = msg.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(item.UID)
			case imapclient.FetchItemDataBodySection:
				m, ok := byUID[uid]
				if !ok {
					continue // not asked for: go-imap should not route it here
				}
				if uid <= last {
					// The checkpoint must only move forward; servers answer
					// in sequence (hence UID) order.
					handleErr = fmt.Errorf("server returned uid %d after %d", uid, last)
					break
				}
				msg := &Message{
					Folder: cp.Folder, UIDValidity: cp.UIDValidity, UID: uid,
					InternalDate: m.date, Size: m.size, Truncated: headerOnly,
				}
				body := &bodyReader{r: bytes.NewReader(nil)}
				if item.Literal != nil {
					body.r, body.left = item.Literal, item.Literal.Size()
				}
				msg.Body = body
				err := s.st.Handle(ctx, msg)
				if body.err != nil {
					// The connection broke inside the literal. go-imap's
					// reader goroutine has moved on, so draining the
					// command (which reads the literal again) would race
					// with it: close the connection and leave.
					s.c.Close()
					return handled, errors.Join(fmt.Errorf("read uid %d: %w", uid, body.err), err, s.flush(ctx))
				}
				if err != nil {
					handleErr = fmt.Errorf("handle uid %d: %w", uid, err)
					break
				}
				handled = append(handled, uid)
				last = uid
			}
		}
	}
	// Close drains what is left of the command (at most one chunk).
	closeErr := s.wait(cmd.Close)
	if handleErr != nil {
		// Commit what Handle accepted before the failure.
		return handled, errors.Join(handleErr, s.flush(ctx))
	}
	if closeErr != nil {
		return handled, fmt.Errorf("fetch: %w", closeErr)
	}
	return handled, nil
}

// bodyReader is a message literal (RFC 9051 4.3) that reports a
// connection lost inside it as io.ErrUnexpectedEOF (go-imap returns a bare
// io.EOF, which would pass a truncated message as complete), and that,
// once a read failed, fails again without touching the connection.
type bodyReader struct {
	r    io.Reader
	left int64 // bytes of the literal not yet read
	err  error // the first error other than the literal's end
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// flush commits a batching store's pending messages.
func (s *session) flush(ctx context.Context) error {
	if f, ok := s.st.(Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	return nil
}
