package imapsync

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DefaultSentName is the folder OpenSent uses, and creates, when the server
// names no \Sent folder (RFC 6154) and has none of the usual names.
const DefaultSentName = "Sent"

// sentNames are the names of a Sent folder OpenSent recognises without a
// \Sent attribute, in order of preference (compared case-insensitively).
var sentNames = []string{"Sent", "Sent Items", "Sent Messages", "Sent Mail"}

// Folder is a session on one mailbox's Sent folder, for keeping copies of
// the mail Postdesk submits over SMTP and for finding out whether a message
// whose submission outcome is unknown went out. Its methods are serialised.
type Folder struct {
	mu   sync.Mutex
	s    *session
	name string
}

// OpenSent opens a session on the mailbox's Sent folder: the one LIST marks
// \Sent (RFC 6154 2), else one of the usual names, else DefaultSentName,
// created (with USE (\Sent) where the server has CREATE-SPECIAL-USE, RFC
// 6154 3). It authenticates exactly as sync does (same Config; a refused
// token is retried once with RefreshToken, then an *AuthError), and selects
// the folder. ctx bounds OpenSent only; each method takes its own, and the
// session lasts until Close.
func OpenSent(ctx context.Context, cfg Config) (*Folder, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	s, err := connect(ctx, &cfg, nil)
	if err != nil {
		return nil, err
	}
	f := &Folder{s: s}
	if err := f.open(); err != nil {
		s.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open sent folder: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("open sent folder: %w", err)
	}
	s.stop() // from here on, each call's ctx bounds it
	s.log.Debug("imap sent folder opened", "folder", f.name)
	return f, nil
}

// open finds or creates the Sent folder and selects it.
func (f *Folder) open() error {
	s := f.s
	opts := &imap.ListOptions{}
	if s.caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true // RFC 6154 2 (RETURN needs LIST-EXTENDED, which SPECIAL-USE implies)
	}
	var list []*imap.ListData
	err := s.wait(func() (err error) { list, err = s.c.List("", "*", opts).Collect(); return err })
	if err != nil {
		return fmt.Errorf("list folders: %w", err)
	}
	name, exists := chooseSent(list)
	if !exists {
		var copts *imap.CreateOptions
		if s.caps.Has(imap.CapCreateSpecialUse) {
			copts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrSent}}
		}
		err := s.wait(func() error { return s.c.Create(name, copts).Wait() })
		if err != nil && copts != nil {
			// A server may refuse the USE option (RFC 6154 3: NO [USEATTR]);
			// the folder is still worth having.
			err = s.wait(func() error { return s.c.Create(name, nil).Wait() })
		}
		if err != nil {
			return fmt.Errorf("create folder %q: %w", name, err)
		}
		s.log.Info("imap sent folder created", "folder", name)
	}
	// SELECT, not EXAMINE: APPEND and SEARCH work on either, but a
	// read-only session would not see its own appends as recent.
	if err := s.wait(func() error { _, err := s.c.Select(name, nil).Wait(); return err }); err != nil {
		return fmt.Errorf("select %q: %w", name, err)
	}
	f.name = name
	return nil
}

// chooseSent picks the Sent folder from a LIST answer: the first with the
// \Sent attribute, else the first of sentNames that exists (not
// \Noselect), else DefaultSentName, which does not exist yet.
func chooseSent(list []*imap.ListData) (name string, exists bool) {
	selectable := func(d *imap.ListData) bool {
		for _, a := range d.Attrs {
			if strings.EqualFold(string(a), string(imap.MailboxAttrNoSelect)) ||
				strings.EqualFold(string(a), string(imap.MailboxAttrNonExistent)) {
				return false
			}
		}
		return true
	}
	for _, d := range list {
		for _, a := range d.Attrs {
			if strings.EqualFold(string(a), string(imap.MailboxAttrSent)) && selectable(d) {
				return d.Mailbox, true
			}
		}
	}
	for _, want := range sentNames {
		for _, d := range list {
			if strings.EqualFold(d.Mailbox, want) && selectable(d) {
				return d.Mailbox, true
			}
		}
	}
	return DefaultSentName, false
}

// Name returns the Sent folder's name on the server.
func (f *Folder) Name() string { return f.name }

// Append stores raw in the folder with the \Seen flag and date as its
// internal date (RFC 9051 6.3.12); a zero date lets the server choose.
func (f *Folder) Append(ctx context.Context, raw []byte, date time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.s.c.Close() })
	defer stop()
	opts := &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: date}
	err := f.s.wait(func() error {
		cmd := f.s.c.Append(f.name, int64(len(raw)), opts)
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("append to %q: %w", f.name, context.Cause(ctx))
		}
		return fmt.Errorf("append to %q: %w", f.name, err)
	}
	return nil
}

// HasMessageID reports whether the folder holds a message whose Message-ID
// is messageID (given without angle brackets). It searches with UID SEARCH
// HEADER Message-ID "<id>" (RFC 9051 6.4.4, a substring match) and confirms
// each hit by reading its Message-ID field, so "<a@b>" does not match
// "<xa@b>".
func (f *Folder) HasMessageID(ctx context.Context, messageID string) (bool, error) {
	if messageID == "" || strings.ContainsAny(messageID, "<>\"\\ \t\r\n") {
		return false, fmt.Errorf("has message-id: %w: %q", ErrBadMessageID, messageID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { f.s.c.Close() })
	defer stop()
	want := "<" + messageID + ">"
	found, err := f.search(want)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("search %q for a message-id: %w", f.name, context.Cause(ctx))
		}
		return false, fmt.Errorf("search %q for a message-id: %w", f.name, err)
	}
	return found, nil
}

// ErrBadMessageID is returned for a Message-ID that is empty or has angle
// brackets, quotes, backslashes or white space.
var ErrBadMessageID = errors.New("imapsync: not a bare message-id")

func (f *Folder) search(want string) (bool, error) {
	s := f.s
	criteria := &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: want}}}
	var data *imap.SearchData
	if err := s.wait(func() (err error) { data, err = s.c.UIDSearch(criteria, nil).Wait(); return err }); err != nil {
		return false, err
	}
	uids, ok := data.All.(imap.UIDSet)
	if !ok || len(uids) == 0 {
		return false, nil
	}
	if _, static := uids.Nums(); !static {
		return false, errors.New("server answered SEARCH with a dynamic set")
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	var msgs []*imapclient.FetchMessageBuffer
	err := s.wait(func() (err error) {
		msgs, err = s.c.Fetch(uids, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		return err
	})
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		if messageIDOf(m.FindBodySection(section)) == want {
			return true, nil
		}
	}
	return false, nil
}

// messageIDOf returns the Message-ID field of a header section, trimmed
// ("<id@host>"), or "".
func messageIDOf(header []byte) string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.TrimRight(header, "\r\n"), "\r\n\r\n"...))))
	h, _ := r.ReadMIMEHeader()
	return strings.TrimSpace(h.Get("Message-Id"))
}

// Close logs out and closes the session.
func (f *Folder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s.close()
	return nil
}
