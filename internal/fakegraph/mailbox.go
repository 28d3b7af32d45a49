package fakegraph

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// ErrNoMailbox is returned by the test API for a mailbox or message the
// stand-in does not have.
var ErrNoMailbox = errors.New("fakegraph: no such mailbox or message")

// wellKnown are the folders every mailbox has, by well-known name.
var wellKnown = []struct{ name, display string }{
	{"inbox", "Inbox"}, {"sentitems", "Sent Items"}, {"drafts", "Drafts"},
	{"deleteditems", "Deleted Items"}, {"junkemail", "Junk Email"}, {"archive", "Archive"}, {"outbox", "Outbox"},
}

type mailbox struct {
	address  string
	folders  []*mfolder
	messages map[string]*message
	seq      int64 // the last change's sequence number
	epoch    int   // delta links of an earlier epoch are gone (410)
	replays  int   // the next delta pages served again
	sent     [][]byte
	inflight int
	peak     int
}

type mfolder struct {
	id, wellKnown, display, parent string
}

type message struct {
	id, folder string
	raw        []byte
	received   time.Time
	messageID  string
	subject    string
	created    int64 // sequence number when it was created
	seq        int64 // sequence number of its last change
	removed    bool  // a tombstone
}

// AddMailbox makes the stand-in host address's mailbox (idempotent).
func (s *Server) AddMailbox(address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMailboxLocked(lower(address))
}

func (s *Server) addMailboxLocked(key string) *mailbox {
	if mb, ok := s.mailboxes[key]; ok {
		return mb
	}
	mb := &mailbox{address: key, messages: map[string]*message{}}
	for _, wk := range wellKnown {
		mb.folders = append(mb.folders, &mfolder{id: newID("AQMkAD"), wellKnown: wk.name, display: wk.display})
	}
	s.mailboxes[key] = mb
	return mb
}

// folder finds a folder by id, well-known name or display name (a top
// level one), case-insensitively. Called with s.mu held.
func (mb *mailbox) folder(ref string) *mfolder {
	for _, f := range mb.folders {
		if f.id == ref {
			return f
		}
	}
	for _, f := range mb.folders {
		if strings.EqualFold(f.wellKnown, ref) || (f.parent == "" && strings.EqualFold(f.display, ref)) {
			return f
		}
	}
	return nil
}

// Deliver files raw in user's folder (a well-known name or a display name;
// a folder that does not exist is created at the top level), received now,
// and returns the message id. The mailbox is added if needed.
func (s *Server) Deliver(user, folder string, raw []byte) string {
	return s.DeliverAt(user, folder, raw, s.opts.Now())
}

// DeliverAt is Deliver with a given receivedDateTime.
func (s *Server) DeliverAt(user, folder string, raw []byte, received time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.addMailboxLocked(lower(user))
	return s.fileLocked(mb, folder, raw, received).id
}

func (s *Server) fileLocked(mb *mailbox, folder string, raw []byte, received time.Time) *message {
	f := mb.folder(folder)
	if f == nil {
		f = &mfolder{id: newID("AQMkAD"), display: folder}
		mb.folders = append(mb.folders, f)
	}
	mb.seq++
	m := &message{id: newID("AAMkAD"), folder: f.id, raw: slices.Clone(raw), received: received.UTC().Truncate(time.Second),
		created: mb.seq, seq: mb.seq}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.messageID = strings.TrimSpace(msg.Header.Get("Message-ID"))
		m.subject = msg.Header.Get("Subject")
	}
	mb.messages[m.id] = m
	return m
}

// AddFolder creates a folder by display name under parent (a folder id,
// well-known or display name; "" for the top level) and returns its id.
func (s *Server) AddFolder(user, parent, display string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.addMailboxLocked(lower(user))
	pid := ""
	if parent != "" {
		p := mb.folder(parent)
		if p == nil {
			return "", fmt.Errorf("folder %q: %w", parent, ErrNoMailbox)
		}
		pid = p.id
	}
	f := &mfolder{id: newID("AQMkAD"), display: display, parent: pid}
	mb.folders = append(mb.folders, f)
	return f.id, nil
}

// Remove deletes a message: the next delta round reports it as @removed.
func (s *Server) Remove(user, id string) error {
	return s.change(user, id, func(m *message) { m.removed = true })
}

// Touch changes a message (as marking it read does): the next delta round
// returns it again, which to a client looks like a replay.
func (s *Server) Touch(user, id string) error {
	return s.change(user, id, func(*message) {})
}

func (s *Server) change(user, id string, f func(*message)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.mailboxes[lower(user)]
	if !ok {
		return fmt.Errorf("mailbox %q: %w", user, ErrNoMailbox)
	}
	m, ok := mb.messages[id]
	if !ok || m.removed {
		return fmt.Errorf("message %q: %w", id, ErrNoMailbox)
	}
	f(m)
	mb.seq++
	m.seq = mb.seq
	return nil
}

// Message is a message the stand-in holds, for tests to look at.
type Message struct {
	ID        string
	Folder    string // the folder's well-known name, else its display name
	MessageID string // the Message-ID header
	Subject   string
	Received  time.Time
	Raw       []byte
}

// Messages returns the messages in user's folder (well-known or display
// name, or id; "" for every folder) in the order they arrived.
func (s *Server) Messages(user, folder string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.mailboxes[lower(user)]
	if !ok {
		return nil
	}
	var want *mfolder
	if folder != "" {
		if want = mb.folder(folder); want == nil {
			return nil
		}
	}
	var out []Message
	for _, m := range mb.sorted() {
		if m.removed || (want != nil && m.folder != want.id) {
			continue
		}
		f := mb.folder(m.folder)
		out = append(out, Message{ID: m.id, Folder: orDefault(f.wellKnown, f.display), MessageID: m.messageID,
			Subject: m.subject, Received: m.received, Raw: slices.Clone(m.raw)})
	}
	return out
}

// sorted returns the messages by creation. Called with s.mu held.
func (mb *mailbox) sorted() []*message {
	out := make([]*message, 0, len(mb.messages))
	for _, m := range mb.messages {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *message) int { return int(a.created - b.created) })
	return out
}

// Sent returns the MIME of every message user sent through sendMail, as
// decoded from the request (the copy filed in Sent Items lacks
// Auto-Submitted).
func (s *Server) Sent(user string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb, ok := s.mailboxes[lower(user)]
	if !ok {
		return nil
	}
	out := make([][]byte, len(mb.sent))
	for i, b := range mb.sent {
		out[i] = slices.Clone(b)
	}
	return out
}

// ResetDelta forgets user's delta state: every link issued before answers
// 410 Gone syncStateNotFound, as Graph does when its delta token cache has
// dropped a token.
func (s *Server) ResetDelta(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMailboxLocked(lower(user)).epoch++
}

// MaxInFlightSeen returns the most requests that were in flight for user's
// mailbox at once, requests refused for going over the limit included.
func (s *Server) MaxInFlightSeen(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb, ok := s.mailboxes[lower(user)]; ok {
		return mb.peak
	}
	return 0
}

// Requests returns how many authenticated requests reached a mailbox.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}
