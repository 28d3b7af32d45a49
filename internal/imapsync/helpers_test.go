package imapsync

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const (
	testUser     = "agent@example.com"
	testPassword = "secret"
)

// memServer is go-imap's in-memory server on 127.0.0.1, with PLAIN auth and
// a listener that can cut every connection.
type memServer struct {
	addr string
	user *imapmemserver.User

	mu       sync.Mutex
	conns    []net.Conn
	sessions []*imapserver.Conn
}

func startMemServer(t *testing.T, caps ...imap.Cap) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	capSet := imap.CapSet{imap.CapIMAP4rev1: {}}
	for _, c := range caps {
		capSet[c] = struct{}{}
	}
	ms := &memServer{user: user}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			ms.mu.Lock()
			ms.sessions = append(ms.sessions, c)
			ms.mu.Unlock()
			return mem.NewSession(), nil, nil
		},
		Caps:         capSet,
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = ln.Addr().String()
	go srv.Serve(trackingListener{ln, ms})
	t.Cleanup(func() { srv.Close() })
	return ms
}

type trackingListener struct {
	net.Listener
	ms *memServer
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ms.mu.Lock()
		l.ms.conns = append(l.ms.conns, c)
		l.ms.mu.Unlock()
	}
	return c, err
}

// cut closes every server-side connection, as a crashing server does.
func (ms *memServer) cut() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, c := range ms.conns {
		c.Close()
	}
	ms.conns = nil
}

// bye ends every session normally: an untagged BYE, then the close
// (RFC 9051 7.1.5), as Exchange does hourly.
func (ms *memServer) bye(text string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, c := range ms.sessions {
		c.Bye(text)
	}
	ms.sessions = nil
}

// client logs in as the test user, as another mail client would.
func (ms *memServer) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(ms.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// appendMsgs appends raw messages to folder with the given internal dates.
func (ms *memServer) appendMsgs(t *testing.T, folder string, msgs []testMsg) {
	t.Helper()
	c := ms.client(t)
	for _, m := range msgs {
		raw := m.raw()
		cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Time: m.date})
		if _, err := cmd.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	c.Logout().Wait()
}

func (ms *memServer) uidValidity(t *testing.T, folder string) uint32 {
	t.Helper()
	data, err := ms.client(t).Select(folder, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return data.UIDValidity
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// testMsg is a small message with a Message-ID.
type testMsg struct {
	id   string
	date time.Time
	pad  int // extra body bytes
}

func (m testMsg) raw() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: customer@example.net\r\nTo: %s\r\nSubject: test %s\r\nMessage-ID: <%s@example.net>\r\nDate: %s\r\n\r\nHello %s\r\n",
		testUser, m.id, m.id, m.date.Format(time.RFC1123Z), m.id)
	if m.pad > 0 {
		line := strings.Repeat("x", 76) + "\r\n"
		for b.Len() < m.pad {
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

func msgs(prefix string, n int, age time.Duration) []testMsg {
	out := make([]testMsg, n)
	for i := range out {
		out[i] = testMsg{id: fmt.Sprintf("%s%d", prefix, i+1), date: time.Now().Add(-age).Truncate(time.Second)}
	}
	return out
}

// got is a message the store committed.
type got struct {
	Folder       string
	UIDValidity  uint32
	UID          uint32
	MessageID    string
	Truncated    bool
	Size         int64
	InternalDate time.Time
	Body         []byte
}

// memStore is a Store in memory. hook, if set, runs after the body was read
// and before the commit; an error fails Handle.
type memStore struct {
	t *testing.T

	mu       sync.Mutex
	cps      map[string]Checkpoint
	msgs     []got
	skipped  []uint32
	resets   int
	handled  chan got // receives every committed message when not nil
	hook     func(m *Message) error
	problems []string
	// noBodies keeps only the Message-ID of each body.
	noBodies bool
}

func newStore(t *testing.T) *memStore {
	return &memStore{t: t, cps: map[string]Checkpoint{}, handled: make(chan got, 10000)}
}

func (s *memStore) Checkpoint(_ context.Context, folder string) (Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[folder], nil
}

func (s *memStore) Handle(_ context.Context, m *Message) error {
	body, err := io.ReadAll(m.Body)
	if err != nil {
		return err
	}
	if s.hook != nil {
		if err := s.hook(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.cps[m.Folder]
	if !m.Truncated && int64(len(body)) != m.Size {
		s.problems = append(s.problems, fmt.Sprintf("uid %d: %d body bytes, size %d", m.UID, len(body), m.Size))
	}
	if cp.UIDValidity != m.UIDValidity || m.UID <= cp.LastUID {
		s.problems = append(s.problems, fmt.Sprintf("handle %s uid %d/%d at checkpoint %+v", m.Folder, m.UIDValidity, m.UID, cp))
	}
	g := got{
		Folder: m.Folder, UIDValidity: m.UIDValidity, UID: m.UID, MessageID: messageID(body),
		Truncated: m.Truncated, Size: m.Size, InternalDate: m.InternalDate, Body: body,
	}
	if s.noBodies {
		g.Body = nil
	}
	s.msgs = append(s.msgs, g)
	s.cps[m.Folder] = Checkpoint{Folder: m.Folder, UIDValidity: m.UIDValidity, LastUID: m.UID}
	if s.handled != nil {
		s.handled <- g
	}
	return nil
}

func (s *memStore) Reset(_ context.Context, folder string, uv uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets++
	s.cps[folder] = Checkpoint{Folder: folder, UIDValidity: uv}
	return nil
}

func (s *memStore) Advance(_ context.Context, cp Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cps[cp.Folder]
	if old.UIDValidity == cp.UIDValidity && cp.LastUID < old.LastUID {
		s.problems = append(s.problems, fmt.Sprintf("advance backwards %+v -> %+v", old, cp))
	}
	s.cps[cp.Folder] = cp
	return nil
}

func (s *memStore) Skipped(_ context.Context, folder string, uids []uint32, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reason != ReasonTooOld {
		s.problems = append(s.problems, "unknown skip reason "+reason)
	}
	s.skipped = append(s.skipped, uids...)
	return nil
}

func (s *memStore) setCheckpoint(cp Checkpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cps[cp.Folder] = cp
}

func (s *memStore) checkpoint(folder string) Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cps[folder]
}

func (s *memStore) all() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func (s *memStore) uids() []uint32 {
	var u []uint32
	for _, g := range s.all() {
		u = append(u, g.UID)
	}
	return u
}

// check fails the test if the store saw the checkpoint move backwards or a
// message below it.
func (s *memStore) check() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		s.t.Error(p)
	}
}

// waitFor waits until the store committed n messages in total.
func (s *memStore) waitFor(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if len(s.all()) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("store has %d messages after %v, want %d", len(s.all()), timeout, n)
}

func messageID(raw []byte) string {
	for line := range strings.SplitSeq(string(raw), "\r\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memConfig is a Config for the test user of ms.
func memConfig(t *testing.T, ms *memServer) Config {
	return Config{
		Addr: ms.addr, Security: SecurityNone, Username: testUser, Auth: AuthPlain,
		Password:    func(context.Context) (string, error) { return testPassword, nil },
		InitialDays: 30,
		BackoffMin:  10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Logger: testLogger(t),
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("IMAPSYNC_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func wantUIDs(t *testing.T, got []uint32, want ...uint32) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("handled uids %v, want %v", got, want)
	}
}

func seq(from, to uint32) []uint32 {
	var s []uint32
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
