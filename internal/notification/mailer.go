// Package notification emails the desk's own people: agents hear of new
// tickets in the mailboxes they follow, customers' answers on their
// tickets and tickets assigned to them (each as they chose in their
// profile); admins hear of every mailbox notice (expiring, needs
// reauthentication, client-secret or sending fault, quarantined email,
// catch-up beyond the maximum age) and are reminded 3 days and 1 day
// before an authorization runs out.
//
// Invariants:
//
//   - Every email is an outgoing message (store.KindNotification, no
//     ticket) queued in the outbox of a HEALTHY mailbox (healthy.go), so it
//     is sent exactly once, retried and held like a reply. It never goes
//     to a customer (only to users' addresses, never to a support address)
//     and is marked automatic (mailmsg.ComposeNotice), so no auto-responder
//     answers it.
//   - Exactly once, from rows: an agent's events wait as
//     notification_pending rows, written in the event dispatcher's
//     transaction (Mailer is a jobs.EventConsumer); a batch is taken (its
//     rows deleted) in the transaction that queues its one email. A
//     notice's email is decided (notices.email_state) and a reminder
//     recorded (notice_reminders) in the transaction that queues theirs.
//     Several processes may run the loop: the losing one's transaction
//     finds the rows taken (store.ErrTaken) and rolls back.
//   - Batched: an agent's first pending event starts a window
//     (Options.Window); everything that arrives meanwhile goes in the same
//     email, a digest when there is more than one.
//   - When no mailbox is healthy, nothing is sent: the notice records why
//     and the app shows it (Admin → Emails).
package notification

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/outage"
	"github.com/postdesk/postdesk/internal/store"
)

// DefaultWindow is how long an agent's notifications are gathered before
// their email goes.
const DefaultWindow = time.Minute

// DefaultReminders are how long before an authorization's deadline the
// admins are reminded (besides the first warning).
var DefaultReminders = []time.Duration{3 * 24 * time.Hour, 24 * time.Hour}

// Options configures a Mailer.
type Options struct {
	DB *store.DB
	// OAuth gives the authorizations' deadlines for the reminders and says
	// that OAuth mailboxes can send here (nil: no OAuth provider
	// configured: OAuth mailboxes are not healthy, nothing to remind of).
	OAuth *oauth.Service
	// Enqueuer wakes a mailbox's outbox sender in the transaction that
	// queued its mail (jobs.Sender); nil leaves it to the sender's sweep.
	Enqueuer desk.Enqueuer
	// BaseURL is the address agents use to reach Postdesk (links).
	BaseURL *url.URL
	// SystemMailbox is the address of the mailbox that sends every
	// notification while it is healthy ("": a ticket's own mailbox).
	SystemMailbox string
	// Window is how long an agent's notifications are gathered (default
	// DefaultWindow).
	Window time.Duration
	// Reminders before a deadline (default DefaultReminders).
	Reminders []time.Duration
	// Interval is how often the loop looks for due work besides its
	// wake-ups (default 10 s).
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Mailer sends notifications. Register it with the event dispatcher
// (jobs.Dispatcher.Register) and Start its loop. Safe for concurrent use.
type Mailer struct {
	opt Options
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	started bool
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	base    context.Context
	cancel  context.CancelFunc

	// held: the last Flush left batches pending because no mailbox could
	// send (logged when it starts and when it ends, not at every pass).
	held atomic.Bool
	// failing logs the loop's failures (the database out of reach) when
	// they start, once a minute, and when they end.
	failing *outage.Log
}

// New returns a Mailer (its loop not started).
func New(opt Options) (*Mailer, error) {
	if opt.DB == nil {
		return nil, errors.New("notifications: no database")
	}
	if opt.BaseURL == nil {
		return nil, errors.New("notifications: no base URL for links")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	if len(opt.Reminders) == 0 {
		opt.Reminders = DefaultReminders
	}
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.SystemMailbox = strings.ToLower(strings.TrimSpace(opt.SystemMailbox))
	m := &Mailer{opt: opt, db: opt.DB, log: opt.Logger.With("component", "notifications"),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	m.failing = outage.New(m.log, slog.LevelError, "send notifications")
	m.base, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

func (m *Mailer) now() time.Time { return m.opt.Now().UTC().Truncate(time.Millisecond) }

// link is the absolute URL of a page of Postdesk (path may end in a
// #fragment).
func (m *Mailer) link(path string) string {
	u := *m.opt.BaseURL
	path, u.Fragment, _ = strings.Cut(path, "#")
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = ""
	return u.String()
}

// Wake makes the loop look now (it never blocks).
func (m *Mailer) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Start runs the loop in this process until Stop: at once, on every Wake,
// when the next agent's batch is due, and every Interval.
func (m *Mailer) Start() {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return
	}
	m.started = true
	m.mu.Unlock()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(m.opt.Interval)
		defer tick.Stop()
		for {
			m.runSafely()
			var due <-chan time.Time
			var timer *time.Timer
			// While batches wait for a mailbox that can send, their due
			// times are past: the tick looks again, not a timer at once.
			if next, err := m.db.NextNotificationDue(m.base); err == nil && !next.IsZero() && !m.held.Load() {
				timer = time.NewTimer(max(next.Sub(m.opt.Now()), 0) + 10*time.Millisecond)
				due = timer.C
			}
			select {
			case <-m.stop:
				if timer != nil {
					timer.Stop()
				}
				return
			case <-m.wake:
			case <-tick.C:
			case <-due:
			}
			if timer != nil {
				timer.Stop()
			}
		}
	}()
}

func (m *Mailer) runSafely() {
	defer func() {
		if p := recover(); p != nil {
			m.log.Error("notification loop panicked", "panic", fmt.Sprint(p))
		}
	}()
	if err := m.Run(m.base); err != nil && m.base.Err() == nil {
		m.failing.Failed(err)
	} else if err == nil {
		m.failing.Done()
	}
}

// Stop ends the loop: the pass under way finishes until ctx ends, then it
// is cancelled (what it had not queued is done by the next pass).
func (m *Mailer) Stop(ctx context.Context) error {
	m.mu.Lock()
	started := m.started
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.mu.Unlock()
	if !started {
		m.cancel()
		return nil
	}
	select {
	case <-m.done:
		m.cancel()
		return nil
	case <-ctx.Done():
		m.cancel()
		<-m.done
		return ctx.Err()
	}
}

// Run does one pass: the agents' due batches, the notices not yet
// emailed, the reminders that came due. The loop runs it; tests call it.
func (m *Mailer) Run(ctx context.Context) error {
	_, errFlush := m.Flush(ctx)
	_, errNotices := m.EmailNotices(ctx)
	_, errRemind := m.Remind(ctx)
	return errors.Join(errFlush, errNotices, errRemind)
}
