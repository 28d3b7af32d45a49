package mailsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/msgraph"
	"github.com/postdesk/postdesk/internal/store"
)

// TransportGraph names the Microsoft Graph transport.
const TransportGraph = store.TransportGraph

// Defaults of the Graph transport.
const (
	DefaultGraphPoll     = 30 * time.Second
	DefaultGraphPageSize = 50
	// graphResyncSlack is how far before the last finished round a resync
	// after a lost delta state starts: late deliveries carry an earlier
	// receivedDateTime. What comes twice is a duplicate, and changes nothing.
	graphResyncSlack = 24 * time.Hour
)

// Graph is the Microsoft Graph transport: a delta query per configured
// folder, polled. Its cursor is "graph:<since>:<link>": link is the
// nextLink or deltaLink to ask next (opaque, used verbatim; "" starts a new
// round with DeltaSince(since)), and since (Unix ms) bounds the round a
// lost delta state (410 Gone, syncStateNotFound) starts again with.
//
// Exactly once: a message's cursor is the link of the page it came in
// (the last one of a page: the page's next link), so a failure or a crash
// asks the same page again, and dedupe (Message-ID, or a content hash)
// makes a message seen twice a no-op. Replays and "@removed" entries
// therefore change nothing. Nothing is changed on the server.
type Graph struct {
	// Poll is the wait between rounds (default DefaultGraphPoll);
	// PageSize the Prefer: odata.maxpagesize (default DefaultGraphPageSize).
	Poll     time.Duration
	PageSize int
	// BackoffMin and BackoffMax bound the jittered wait after a failed
	// round (defaults 1 s and 5 minutes).
	BackoffMin, BackoffMax time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

var _ Transport = Graph{}

// Fetcher builds a mailbox's Graph fetcher; the Session must carry its
// Graph client.
func (t Graph) Fetcher(s Session) (Fetcher, error) {
	if s.Graph == nil {
		return nil, fmt.Errorf("%w: mailbox %s has no Microsoft Graph client", ErrPermanent, s.Mailbox.Address)
	}
	if t.Poll <= 0 {
		t.Poll = DefaultGraphPoll
	}
	if t.PageSize <= 0 {
		t.PageSize = DefaultGraphPageSize
	}
	if t.BackoffMin <= 0 {
		t.BackoffMin = time.Second
	}
	if t.BackoffMax < t.BackoffMin {
		t.BackoffMax = max(5*time.Minute, t.BackoffMin)
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	folders := s.Server.Folders
	if len(folders) == 0 {
		folders = []string{"INBOX"}
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &graphFetcher{t: t, c: s.Graph, folders: folders, srv: s.Server, events: s.Events, log: log}, nil
}

// Ahead: delta links are opaque and do not order; a cursor is never
// judged ahead of another (the lease keeps one writer, and dedupe makes
// an overlap harmless).
func (Graph) Ahead(stored, next Cursor) bool { return false }

// GraphCursor encodes a Graph folder's position.
func GraphCursor(since time.Time, link string) Cursor {
	var ms int64
	if !since.IsZero() {
		ms = since.UnixMilli()
	}
	return Cursor("graph:" + strconv.FormatInt(ms, 10) + ":" + link)
}

// GraphPosition decodes a Graph cursor ("" : never fetched).
func GraphPosition(c Cursor) (since time.Time, link string, err error) {
	if c == "" {
		return time.Time{}, "", nil
	}
	rest, ok := strings.CutPrefix(string(c), "graph:")
	ms, link, ok2 := strings.Cut(rest, ":")
	n, perr := strconv.ParseInt(ms, 10, 64)
	if !ok || !ok2 || perr != nil {
		// An IMAP cursor of a mailbox switched to Graph: start a new round.
		return time.Time{}, "", fmt.Errorf("not a Graph cursor: %.20q", c)
	}
	if n > 0 {
		since = time.UnixMilli(n).UTC()
	}
	return since, link, nil
}

type graphFetcher struct {
	t       Graph
	c       *msgraph.Client
	folders []string
	srv     store.MailboxServer
	events  func(Event)
	log     *slog.Logger
	ids     map[string]string // folder name -> Graph id
}

func (f *graphFetcher) event(kind EventKind, err error) {
	if f.events != nil {
		f.events(Event{Kind: kind, Err: err})
	}
}

// Run polls every folder's delta until ctx ends or Graph refuses the
// mailbox's sign-in for good.
func (f *graphFetcher) Run(ctx context.Context, st Store) error {
	fails := 0
	connected := false
	for ctx.Err() == nil {
		err := f.round(ctx, st)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if end := f.final(err); end != nil {
			f.event(EventAuthFailed, err)
			return end
		}
		wait := f.t.Poll
		if err != nil {
			fails++
			wait = f.backoff(fails, err)
			f.log.Warn("graph sync round failed; trying again", "err", err, "retry_in", wait)
			f.event(EventError, explain(err))
			connected = false
		} else {
			fails = 0
			if !connected {
				f.event(EventConnected, nil)
				connected = true
			}
			f.event(EventSynced, nil)
			f.event(EventIdling, nil)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return ctx.Err()
}

// final turns the failures that end the fetcher into mailsync's: Graph
// refused a fresh token (a *RefusedError), or the sign-in failed for good.
func (f *graphFetcher) final(err error) error {
	var ge *msgraph.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ge) && ge.Kind == msgraph.KindAuth:
		return &RefusedError{Mechanism: "Microsoft Graph", Refreshed: true, Detail: ge.Explain(), Err: err}
	case errors.Is(err, ErrPermanent):
		return err
	case oauthFinal(err):
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	return nil
}

// backoff is the jittered wait after the n-th failed round in a row, at
// least what Graph asked for.
func (f *graphFetcher) backoff(n int, err error) time.Duration {
	d := f.t.BackoffMin << min(n-1, 16)
	d = min(d, f.t.BackoffMax)
	d = time.Duration(float64(d) * (0.5 + rand.Float64()/2))
	var ge *msgraph.Error
	if errors.As(err, &ge) && ge.RetryAfter > d {
		d = min(ge.RetryAfter, f.t.BackoffMax)
	}
	return d
}

// round fetches every folder once.
func (f *graphFetcher) round(ctx context.Context, st Store) error {
	if f.ids == nil {
		f.ids = map[string]string{}
	}
	for _, folder := range f.folders {
		id, ok := f.ids[folder]
		if !ok {
			var err error
			if id, err = f.c.FolderID(ctx, graphFolderName(folder)); err != nil {
				return fmt.Errorf("find folder %s: %w", folder, err)
			}
			f.ids[folder] = id
		}
		if err := f.folder(ctx, st, folder, id); err != nil {
			return fmt.Errorf("folder %s: %w", folder, err)
		}
	}
	return nil
}

// graphFolderName maps IMAP's INBOX to Graph's well-known inbox.
func graphFolderName(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return "inbox"
	}
	return folder
}

// start is where a folder's first round begins: InitialDays back (0: only
// new mail); MaxAgeDays bounds every round further.
func (f *graphFetcher) start(now time.Time) time.Time {
	return now.Add(-time.Duration(max(f.srv.InitialDays, 0)) * 24 * time.Hour)
}

// folder runs one delta round of a folder from its cursor.
func (f *graphFetcher) folder(ctx context.Context, st Store, folder, id string) error {
	c, err := st.Cursor(ctx, folder)
	if err != nil {
		return err
	}
	since, link, err := GraphPosition(c)
	if err != nil {
		f.log.Warn("graph: folder's cursor is not Graph's; starting a new round", "folder", folder)
		since, link = time.Time{}, ""
	}
	roundStart := f.t.Now().UTC()
	if since.IsZero() {
		since = f.start(roundStart)
	}
	if f.srv.MaxAgeDays > 0 {
		since = maxTime(since, roundStart.Add(-time.Duration(f.srv.MaxAgeDays)*24*time.Hour))
	}
	page, err := f.page(ctx, id, since, link)
	var ge *msgraph.Error
	if errors.As(err, &ge) && ge.Kind == msgraph.KindSyncReset {
		// The delta state is gone: a new round bounded by receivedDateTime.
		f.log.Info("graph: delta state lost; resyncing from receivedDateTime", "folder", folder, "since", since)
		link = ""
		if err := st.Advance(ctx, folder, GraphCursor(since, "")); err != nil {
			return err
		}
		page, err = f.page(ctx, id, since, "")
	}
	if err != nil {
		return err
	}
	for {
		next := page.NextLink
		if next == "" {
			next = page.DeltaLink
		}
		var items []msgraph.DeltaItem
		for _, it := range page.Items {
			if !it.Removed && it.ID != "" {
				items = append(items, it)
			}
		}
		for i, it := range items {
			cur := GraphCursor(since, link) // this page again
			if i == len(items)-1 {
				cur = GraphCursor(since, next)
			}
			if err := f.message(ctx, st, folder, it, cur); err != nil {
				return err
			}
		}
		if page.NextLink == "" {
			// The round is over: the next starts from the delta link, and a
			// lost state from shortly before this round.
			return st.Advance(ctx, folder, GraphCursor(roundStart.Add(-graphResyncSlack), page.DeltaLink))
		}
		if len(items) == 0 {
			if err := st.Advance(ctx, folder, GraphCursor(since, next)); err != nil {
				return err
			}
		}
		link = page.NextLink
		if page, err = f.c.Delta(ctx, id, link, f.t.PageSize); err != nil {
			return err
		}
	}
}

func (f *graphFetcher) page(ctx context.Context, id string, since time.Time, link string) (*msgraph.DeltaPage, error) {
	if link == "" {
		return f.c.DeltaSince(ctx, id, since, f.t.PageSize)
	}
	return f.c.Delta(ctx, id, link, f.t.PageSize)
}

// message streams one message's MIME into the Store. A message gone
// meanwhile (deleted, moved) is passed over.
func (f *graphFetcher) message(ctx context.Context, st Store, folder string, it msgraph.DeltaItem, cur Cursor) error {
	body, err := f.c.MIME(ctx, it.ID)
	var ge *msgraph.Error
	if errors.As(err, &ge) && ge.Kind == msgraph.KindNotFound {
		return nil // its cursor moves with the next message or the round's end
	}
	if err != nil {
		return fmt.Errorf("fetch message %s: %w", it.ID, err)
	}
	defer body.Close()
	return st.Handle(ctx, &Message{Folder: folder, Cursor: cur, Where: folder + ", Graph message " + it.ID,
		InternalDate: it.ReceivedDateTime, Size: it.Size, Body: body})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// explained is a Graph failure in the words admins read on the mailbox
// (msgraph.Error.Explain), still matching the error underneath.
type explained struct {
	err   error
	words string
}

func (e explained) Error() string { return e.words }
func (e explained) Unwrap() error { return e.err }

// explain puts a Graph failure in plain words; other errors stay as they are.
func explain(err error) error {
	var ge *msgraph.Error
	if !errors.As(err, &ge) {
		return err
	}
	words := "Microsoft Graph: " + ge.Explain()
	if ge.Status != 0 {
		words += fmt.Sprintf(" (HTTP %d %s)", ge.Status, ge.Code)
	}
	return explained{err: err, words: words}
}
