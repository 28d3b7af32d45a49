package jobs

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/outage"
	"github.com/postdesk/postdesk/internal/store"
)

// The outbox sender.
//
// Rows are the truth; jobs only wake the sender. An outgoing message is a
// messages row with an outbox row, committed with the ticket change that
// wrote it. A mailbox's outbox is sent by one sender at a time across every
// process (a lease per mailbox in outbox_leases, renewed with an attempt
// once half of it is spent), in message order, over one SMTP connection.
// Three things wake a mailbox's sender: the River job
// SendRepliesArgs{MailboxID} (inserted in the transaction that queued the
// message unless this process is draining that mailbox, unique while
// waiting or running: any process may work it), a direct wake-up of this process's
// sender once that transaction commits (so an idle queue sends at once
// instead of at River's next poll), and each process's sweep (Start), which
// at start and every 30 s finds every mailbox with due work (retries,
// acknowledgements, what a killed process left, anything missed) and held
// mail whose mailbox can send again.
//
// Exactly once: each attempt is recorded (state sending, attempts + 1) in a
// committed transaction before dialling and before the end of the
// message's data, and only while the sender holds the mailbox's live
// lease; sent is recorded right after the server's 250, in the transaction
// that records the next message's attempt (outbox_record.go).
// A message found sending by the next holder of the lease has an unknown
// outcome: it is looked for by Message-ID in the Sent folder where the
// server saves submitted mail itself (Microsoft 365, Gmail), and otherwise
// marked unknown, with a sentence on its ticket, and never sent again
// unless an agent chooses.

// SendRepliesArgs wakes the sender of one mailbox's outbox.
type SendRepliesArgs struct {
	MailboxID int64 `json:"mailbox_id"`
}

// Kind names the job.
func (SendRepliesArgs) Kind() string { return "send_replies" }

// InsertOpts makes the job unique per mailbox while it waits or runs.
func (SendRepliesArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

// SenderOptions configures a Sender.
type SenderOptions struct {
	DB *store.DB
	// OAuth gives tokens to OAuth mailboxes (nil: none configured) and
	// records a refused token (ServerRefused).
	OAuth *oauth.Service
	// Passwords opens password mailboxes' passwords.
	Passwords  store.PasswordFunc
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
	// TLSConfig is used for SMTP and IMAP (nil: the system's roots); tests
	// trust their own certificate authority here.
	TLSConfig *tls.Config
	// Owner names this process on outbox leases (default host, process id
	// and a random part). A stable name that is unique among running
	// processes (serve uses its sync owner) lets a restarted process take
	// its killed predecessor's leases at once instead of after they lapse.
	Owner string
	// Lease is how long a sender holds a mailbox between renewals (default 2 minutes).
	Lease time.Duration
	// Sweep is the interval of the sweep (default 30 s).
	Sweep time.Duration
	// Backoff is the wait after each consecutive temporary failure
	// (default 30 s, 2 min, 10 min, 30 min, 1 h; the last repeats), jittered ±20 %.
	Backoff []time.Duration
	// GiveUp: a message still failing temporarily this long after it was
	// last queued (written, released after a sign-in, or sent again by an
	// agent) fails for good (default 48 hours).
	GiveUp time.Duration
	// SentLookAgain are the waits before each further look in Sent for a
	// message whose outcome is unknown (the connection was lost after its
	// end of data), where the provider files what it sends there (default
	// 5 s, 15 s, 30 s).
	SentLookAgain []time.Duration
	// CatchUpWait is how long a reply released after a sign-in waits for
	// the mailbox's mail sync to catch up (default 2 minutes) before it is
	// checked against the mail that came meanwhile and sent.
	CatchUpWait time.Duration
	Now         func() time.Time
}

// DefaultBackoff is the default wait after consecutive temporary failures.
var DefaultBackoff = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// Sender sends the outbox. Safe for concurrent use.
type Sender struct {
	opt     SenderOptions
	db      *store.DB
	log     *slog.Logger
	owner   string
	metrics *outboxMetrics

	mu       sync.Mutex
	runner   *Runner
	draining map[int64]bool // mailboxes this process is draining
	again    map[int64]bool // woken while draining: look once more
	stopping bool
	stop     chan struct{}   // closed by Stop
	base     context.Context // of direct wake-ups; cancelled by Stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewSender returns a Sender. Give it to jobs.New (Options.Outbox), which
// registers its job and sweep, and to desk.WithEnqueuer.
func NewSender(opt SenderOptions) (*Sender, error) {
	if opt.DB == nil {
		return nil, errors.New("outbox sender: no database")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Lease <= 0 {
		opt.Lease = 2 * time.Minute
	}
	if opt.Sweep <= 0 {
		opt.Sweep = 30 * time.Second
	}
	if len(opt.Backoff) == 0 {
		opt.Backoff = DefaultBackoff
	}
	if opt.GiveUp <= 0 {
		opt.GiveUp = 48 * time.Hour
	}
	if opt.CatchUpWait == 0 {
		opt.CatchUpWait = 2 * time.Minute
	}
	if opt.SentLookAgain == nil {
		opt.SentLookAgain = []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Owner == "" {
		opt.Owner = senderOwner()
	}
	s := &Sender{opt: opt, db: opt.DB, log: opt.Logger.With("component", "outbox"), owner: opt.Owner,
		draining: map[int64]bool{}, again: map[int64]bool{}, stop: make(chan struct{})}
	s.base, s.cancel = context.WithCancel(context.Background())
	m, err := newOutboxMetrics(opt.DB, opt.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// senderOwner names this process's sender on leases: host, process and a
// random part. Whatever the owner, a message found sending when a drain
// starts is resolved as unknown, never taken as in flight: within a process
// one drain at a time sends a mailbox's mail.
func senderOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

func (s *Sender) now() time.Time { return s.opt.Now().UTC().Truncate(time.Millisecond) }

// register adds the send job's worker (jobs.New calls it).
func (s *Sender) register(w *river.Workers) []*river.PeriodicJob {
	river.AddWorker(w, &sendRepliesWorker{s: s})
	return nil
}

// Start runs the sweep in this process: at once, then every
// SenderOptions.Sweep, until Stop. It is a local timer rather than a River
// periodic job on purpose: it must run right after a restart (River elects
// the process that runs periodic jobs, and a killed leader's claim lasts),
// and the per-mailbox lease already shares the work between processes.
func (s *Sender) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opt.Sweep)
		defer t.Stop()
		failing := outage.New(s.log, slog.LevelError, "outbox sweep")
		for {
			if err := s.Sweep(s.base); err != nil && s.base.Err() == nil {
				failing.Failed(err)
			} else if err == nil {
				failing.Done()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *Sender) setRunner(r *Runner) {
	s.mu.Lock()
	s.runner = r
	s.mu.Unlock()
}

// EnqueueSend wakes a mailbox's sender in tx (desk.Enqueuer): once tx
// commits, this process's sender starts at once (or, when it is draining
// the mailbox, looks once more before it ends). The send job, which any
// process may work, is inserted in tx unless this process is draining the
// mailbox: that drain will send the message, and should this process end
// first, the next sweep of any process finds it (a River job a reply
// would cost a write of its own on a busy queue).
func (s *Sender) EnqueueSend(ctx context.Context, tx *store.Tx, mailboxID int64) error {
	s.mu.Lock()
	r := s.runner
	draining := s.draining[mailboxID] && !s.stopping
	s.mu.Unlock()
	if r != nil && !draining {
		if err := r.InsertTx(ctx, tx, SendRepliesArgs{MailboxID: mailboxID}, nil); err != nil {
			return err
		}
	}
	tx.AfterCommit(func() { s.Wake(mailboxID) })
	return nil
}

// Authorized queues a mailbox's held mail again, in its original order, and
// wakes its sender, in the transaction that records a successful sign-in
// (oauth.Config.OnAuthorized).
func (s *Sender) Authorized(ctx context.Context, tx *store.Tx, mailboxID int64) error {
	n, err := tx.ReleaseHeld(ctx, mailboxID, s.now())
	if err != nil || n == 0 {
		return err
	}
	tx.AfterCommit(func() { s.log.Info("held replies released after sign-in", "mailbox_id", mailboxID, "count", n) })
	return s.EnqueueSend(ctx, tx, mailboxID)
}

// Wake starts draining a mailbox in this process unless it is already
// being drained here (then the drain looks once more before it ends).
func (s *Sender) Wake(mailboxID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	if s.draining[mailboxID] {
		s.again[mailboxID] = true
		return
	}
	s.draining[mailboxID] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("outbox sender panicked", "mailbox_id", mailboxID, "panic", fmt.Sprint(p))
			}
		}()
		s.drainMarked(s.base, mailboxID)
	}()
}

// Drain sends a mailbox's due outbox now, in the caller's goroutine, unless
// this process is already draining it (then that drain looks once more).
func (s *Sender) Drain(ctx context.Context, mailboxID int64) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	if s.draining[mailboxID] {
		s.again[mailboxID] = true
		s.mu.Unlock()
		return nil
	}
	s.draining[mailboxID] = true
	s.mu.Unlock()
	return s.drainMarked(ctx, mailboxID)
}

// drainMarked drains a mailbox this process has marked as draining, and
// again while it was woken meanwhile; it clears the mark.
func (s *Sender) drainMarked(ctx context.Context, mailboxID int64) error {
	var err error
	for {
		err = s.drain(ctx, mailboxID)
		s.mu.Lock()
		if !s.again[mailboxID] || s.stopping || ctx.Err() != nil {
			delete(s.draining, mailboxID)
			delete(s.again, mailboxID)
			s.mu.Unlock()
			break
		}
		delete(s.again, mailboxID)
		s.mu.Unlock()
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error("outbox drain failed", "mailbox_id", mailboxID, "err", err)
	}
	return err
}

// stopped reports whether Stop was called: drains take no new message.
func (s *Sender) stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// Stop makes every drain finish the message it is sending and take no
// other; it waits for them until ctx ends, then cancels them (a message
// cut off while being sent is resolved by the next sender).
func (s *Sender) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stop)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return ctx.Err()
	}
}

// sendRepliesWorker works SendRepliesArgs.
type sendRepliesWorker struct {
	river.WorkerDefaults[SendRepliesArgs]
	s *Sender
}

// Timeout: a drain is bounded by its lease and per-command timeouts, not
// by a job deadline (cancelling a send in flight makes its outcome unknown).
func (w *sendRepliesWorker) Timeout(*river.Job[SendRepliesArgs]) time.Duration { return -1 }

func (w *sendRepliesWorker) Work(ctx context.Context, job *river.Job[SendRepliesArgs]) error {
	return w.s.Drain(ctx, job.Args.MailboxID)
}

// Sweep releases held mail of mailboxes that can send again and drains
// every mailbox with due work in this process (a mailbox another process
// is sending is left to it: its lease says so).
func (s *Sender) Sweep(ctx context.Context) error {
	held, err := s.db.OutboxMailboxes(ctx, store.DeliveryHeld)
	if err != nil {
		return err
	}
	for _, id := range held {
		if err := s.releaseIfSendable(ctx, id); err != nil {
			s.log.Warn("release held replies", "mailbox_id", id, "err", err)
		}
	}
	due, err := s.db.DueOutboxMailboxes(ctx, s.now())
	if err != nil {
		return err
	}
	for _, id := range due {
		s.Wake(id)
	}
	return nil
}
