package mailsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/outage"
	"github.com/postdesk/postdesk/internal/store"
)

// Syncer defaults.
const (
	// DefaultRound is the round of a Syncer on SQLite, whose leases
	// expire after DefaultLeaseTTL.
	DefaultRound = 5 * time.Second
	// DefaultLockRound is the round on PostgreSQL: a killed process's
	// locks are free as soon as its connection closes, and the others take
	// its mailboxes over at their next round.
	DefaultLockRound = time.Second
	DefaultLeaseTTL  = 30 * time.Second
	// DefaultRefresh is how often the list of mailboxes is read again.
	DefaultRefresh = 5 * time.Second
	// DefaultConnectRate bounds a process's IMAP logins per second: its
	// sessions start (at boot, at a takeover) and reconnect (after the
	// server restarted) spread over time, 5,000 mailboxes in 50 s.
	DefaultConnectRate = 100
)

// Options configures a Syncer.
type Options struct {
	DB     *store.DB
	Ingest *ingest.Ingester
	OAuth  *oauth.Service // nil: only password mailboxes are synced
	// Passwords opens password mailboxes' passwords (store.MailboxPasswords);
	// nil: password mailboxes fail to sign in.
	Passwords store.PasswordFunc
	Logger    *slog.Logger
	// Owner names this process in leases (default host-pid-random).
	Owner string
	// Round is how often this process's liveness is recorded and
	// mailboxes it could take are tried (default DefaultRound on SQLite,
	// DefaultLockRound on PostgreSQL); LeaseTTL how long a lease (and a
	// heartbeat) lasts without renewal; leases are renewed every third of
	// it, all in one statement.
	Round, LeaseTTL time.Duration
	// Refresh is how often the mailboxes and their settings are listed
	// again (default DefaultRefresh, or 5 rounds if shorter; at least a
	// round). A change in the number of live processes lists them at once.
	Refresh time.Duration
	// ConnectRate bounds new IMAP connections per second (0:
	// DefaultConnectRate; negative: no bound).
	ConnectRate float64
	// Transports build the mailboxes' fetchers, by name (default: IMAP
	// alone, with Tune).
	Transports map[string]Transport
	// Tune adjusts each IMAP session's configuration (tests: TLS roots,
	// timings) when Transports is not given.
	Tune func(cfg *imapsync.Config)
	// GraphPoll is how often a Graph mailbox's folders are polled when
	// Transports is not given (default DefaultGraphPoll).
	GraphPoll  time.Duration
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Syncer runs the mail sync of the mailboxes this process holds.
type Syncer struct {
	opt     Options
	log     *slog.Logger
	hold    holder
	pace    *pacer
	mu      sync.Mutex
	running map[int64]context.CancelFunc
	// settings is the settings version each running session started with:
	// a session restarts when an admin changes its mailbox's settings.
	settings map[int64]time.Time
	// upToDate is when "idling" was last written per mailbox (statusEvery).
	upToDate map[int64]time.Time
	// ended holds back a mailbox whose session ended by itself (its
	// authorization failed for good, its settings cannot be used): it is
	// not taken again until then, unless its settings change, so that it
	// does not restart every round, and a process that can run it (another
	// one's secret key, say) may take it meanwhile.
	ended   map[int64]endedSession
	wg      sync.WaitGroup
	metrics *syncMetrics

	// relist asks the next round to list the mailboxes again (a session
	// ended by itself, and its end may have changed its mailbox's state).
	relist atomic.Bool

	// The round's own state (only Run's goroutine).
	cands     []store.SyncCandidate
	listedAt  time.Time
	renewedAt time.Time
	live      int
}

type syncMetrics struct {
	connected *prometheus.GaugeVec
	fetched   *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// New returns a Syncer; Run starts it.
func New(opt Options) (*Syncer, error) {
	if opt.DB == nil || opt.Ingest == nil {
		return nil, errors.New("syncer: DB and Ingest are required")
	}
	if opt.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		opt.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if opt.Round <= 0 {
		opt.Round = DefaultRound
		if opt.DB.SessionLocks() {
			opt.Round = DefaultLockRound
		}
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = DefaultLeaseTTL
	}
	if opt.Refresh <= 0 {
		opt.Refresh = min(DefaultRefresh, 5*opt.Round)
	}
	opt.Refresh = max(opt.Refresh, opt.Round)
	if opt.ConnectRate == 0 {
		opt.ConnectRate = DefaultConnectRate
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Transports == nil {
		opt.Transports = map[string]Transport{TransportIMAP: IMAP{Tune: opt.Tune}, TransportGraph: Graph{Poll: opt.GraphPoll}}
	}
	s := &Syncer{opt: opt, log: opt.Logger.With("component", "sync", "owner", opt.Owner), running: map[int64]context.CancelFunc{},
		settings: map[int64]time.Time{}, upToDate: map[int64]time.Time{}, ended: map[int64]endedSession{}, pace: newPacer(opt.ConnectRate),
		metrics: &syncMetrics{
			connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "postdesk_mailbox_sync_connected",
				Help: "1 while this process holds a live IMAP session for the mailbox."}, []string{"mailbox"}),
			fetched: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postdesk_mailbox_messages_fetched_total",
				Help: "Messages fetched over IMAP and committed, by mailbox."}, []string{"mailbox"}),
			errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "postdesk_mailbox_sync_errors_total",
				Help: "Failed IMAP sessions, by mailbox (each is retried with back-off)."}, []string{"mailbox"}),
		}}
	if opt.DB.SessionLocks() {
		s.hold = &lockHolder{db: opt.DB, owner: opt.Owner, ttl: opt.LeaseTTL}
	} else {
		s.hold = &leaseHolder{db: opt.DB, owner: opt.Owner, ttl: opt.LeaseTTL}
	}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{s.metrics.connected, s.metrics.fetched, s.metrics.errors} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register sync metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Owner is this process's name in leases.
func (s *Syncer) Owner() string { return s.opt.Owner }

// Run syncs until ctx ends, then stops every session and releases its
// leases and locks (so another process can take over at once).
func (s *Syncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.opt.Round)
	defer t.Stop()
	failing := outage.New(s.log, slog.LevelWarn, "sync round")
	for {
		if err := s.round(ctx); err != nil && ctx.Err() == nil {
			failing.Failed(err)
		} else if err == nil {
			failing.Done()
		}
		select {
		case <-ctx.Done():
			s.stopAll()
			bye, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.hold.close(bye)
			cancel()
			return nil
		case <-t.C:
		case <-s.opt.DB.MailboxesChanged():
			// Paused, resumed, changed or removed here: at once, not
			// at the next refresh (other processes see it then).
			s.relist.Store(true)
		}
	}
}

// Running lists the mailboxes this process is syncing now.
func (s *Syncer) Running() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.running))
	for id := range s.running {
		ids = append(ids, id)
	}
	return ids
}

// start runs a mailbox's session in its own goroutine; the mailbox is
// released when it ends.
func (s *Syncer) start(ctx context.Context, id int64, settingsAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.running[id]; ok {
		return
	}
	mctx, cancel := context.WithCancel(ctx)
	s.running[id] = cancel
	s.settings[id] = settingsAt
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("mailbox sync panicked", "mailbox_id", id, "panic", p)
			}
			// Released before it leaves the running set: a round that sees
			// the mailbox free must not take it while its lease or lock is
			// still being given up.
			release, cancelRelease := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.hold.release(release, id)
			cancelRelease()
			s.mu.Lock()
			delete(s.running, id)
			delete(s.settings, id)
			delete(s.upToDate, id)
			s.mu.Unlock()
		}()
		// Staggered: the session (and its first reads) waits for its slot.
		if s.pace.wait(mctx) != nil {
			return
		}
		began := s.opt.Now()
		s.runMailbox(mctx, id)
		if mctx.Err() == nil {
			s.holdBack(id, settingsAt, began)
		}
	}()
}

// endedSession is a mailbox held back after its session ended by itself.
type endedSession struct {
	until      time.Time
	settingsAt time.Time // the settings it ran with: new ones end the wait
	times      int       // consecutive short sessions
}

// Waits after a session that ended by itself: doubling from endedFirst
// for each one that lasted under endedShort, up to endedMax.
const (
	endedFirst = 5 * time.Second
	endedMax   = 5 * time.Minute
	endedShort = time.Minute
)

// holdBack keeps a mailbox whose session (begun at began) just ended by
// itself from being taken again for a while.
func (s *Syncer) holdBack(id int64, settingsAt, began time.Time) {
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ended[id]
	if now.Sub(began) >= endedShort || !e.settingsAt.Equal(settingsAt) {
		e.times = 0
	}
	wait := endedFirst << min(e.times, 6)
	e.times++
	e.until, e.settingsAt = now.Add(min(wait, endedMax)), settingsAt
	s.ended[id] = e
	s.log.Info("mailbox held back after its sync ended", "mailbox_id", id, "retry_in", min(wait, endedMax).String())
}

// heldBack reports whether a mailbox is held back at now with settings of settingsAt.
func (s *Syncer) heldBack(id int64, settingsAt, now time.Time) bool {
	e, ok := s.ended[id]
	return ok && now.Before(e.until) && e.settingsAt.Equal(settingsAt)
}

func (s *Syncer) stop(id int64, why string) {
	s.mu.Lock()
	cancel, ok := s.running[id]
	s.mu.Unlock()
	if ok {
		s.log.Info("stopping mailbox sync", "mailbox_id", id, "why", why)
		cancel()
	}
}

func (s *Syncer) stopAll() {
	s.mu.Lock()
	for _, cancel := range s.running {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// runMailbox runs one mailbox's fetcher until ctx ends or its
// authorization fails for good.
func (s *Syncer) runMailbox(ctx context.Context, id int64) {
	// An idle mailbox waits at the bottom of this call chain for as long
	// as it is held, so the chain's frames are kept small (setup and the
	// end's handling are in functions of their own): an idle session's
	// stack then fits in 4 KB, not 8, which at 5,000 mailboxes is 20 MB,
	// twice over (the collector's heap goal counts stacks).
	run := s.prepareMailbox(ctx, id)
	if run == nil {
		return
	}
	s.mailboxEnded(ctx, id, run, run.fetcher.Run(ctx, run.st))
}

// mailboxRun is one run of a mailbox's fetcher.
type mailboxRun struct {
	log     *slog.Logger
	mb      store.Mailbox
	fetcher Fetcher
	st      *syncStore
	creds   sessionCreds
}

// prepareMailbox reads the mailbox and builds its fetcher and store; nil
// when it cannot run (the cause is recorded).
func (s *Syncer) prepareMailbox(ctx context.Context, id int64) *mailboxRun {
	run := &mailboxRun{log: s.log.With("mailbox_id", id)}
	var err error
	if run.mb, err = s.opt.DB.Mailbox(ctx, id); err != nil {
		run.log.Error("load mailbox", "err", err)
		return nil
	}
	fetcher, transport, err := s.fetcher(ctx, run.mb, run.log, &run.creds)
	if err != nil {
		s.status(ctx, id, store.SyncError, err)
		run.log.Error("mailbox settings", "err", err)
		return nil
	}
	run.fetcher = fetcher
	address := run.mb.Address
	run.st = &syncStore{db: s.opt.DB, ingest: s.opt.Ingest, mailbox: run.mb, now: s.opt.Now, ahead: transport.Ahead,
		owner: s.opt.Owner, lost: func() { s.stop(id, "another process holds the lease") },
		onBatch: func(results []ingest.Result) {
			s.metrics.fetched.WithLabelValues(address).Add(float64(len(results)))
		}}
	run.log.Info("mailbox sync starting", "address", address)
	return run
}

// mailboxEnded records how a mailbox's fetcher ended.
func (s *Syncer) mailboxEnded(ctx context.Context, id int64, run *mailboxRun, err error) {
	run.st.close()
	s.metrics.connected.WithLabelValues(run.mb.Address).Set(0)
	if ctx.Err() != nil {
		s.status(context.WithoutCancel(ctx), id, store.SyncStopped, nil)
		return
	}
	log := run.log
	// Ended by itself: the next round lists the mailboxes again rather
	// than restart this one from a list read before its end was recorded.
	s.relist.Store(true)
	var refused *RefusedError
	switch {
	case errors.Is(err, ErrPermanent):
		log.Warn("mailbox authorization failed for good", "err", err)
	case errors.As(err, &refused):
		log.Warn("mail server refused the credentials", "mechanism", refused.Mechanism, "refreshed", refused.Refreshed)
		s.refused(ctx, id, refused, time.UnixMilli(run.creds.passwordAt.Load()))
	case err != nil:
		log.Error("mailbox sync ended", "err", err)
	}
	s.status(ctx, id, store.SyncError, err)
}

// sessionCreds is what a session knows of the credentials it used.
type sessionCreds struct {
	// passwordAt is when the password its last login used was saved
	// (Unix milliseconds; MailboxAuth.AuthorizedAt).
	passwordAt atomic.Int64
}

// refused records a refusal by the mail server as the mailbox's state. A
// password mailbox's refusal is fenced by the version of the password the
// login used (passwordAt): a password saved since is not marked refused.
func (s *Syncer) refused(ctx context.Context, id int64, e *RefusedError, passwordAt time.Time) {
	var detail string
	if e.Detail != "" {
		detail = "server said: " + e.Detail
	}
	a, err := s.opt.DB.MailboxAuth(ctx, id)
	if u := a.Usability(s.opt.OAuth != nil); err == nil && (u == store.UnusableNeedsReauth || u == store.UnusableProviderFault) {
		return // the provider's refusal, with its reason, is already recorded
	}
	if err == nil && a.Kind == store.AuthOAuth && s.opt.OAuth != nil {
		err = s.opt.OAuth.ServerRefused(ctx, id, detail)
	} else if err == nil {
		// Each surface says how to give the new password (the code tells
		// it); fetching resumes where it stopped.
		msg := "The mail server refused the mailbox's password."
		if detail != "" {
			msg = "The mail server refused the mailbox's password (" + detail + ")."
		}
		var recorded bool
		err = s.opt.DB.Write(ctx, func(tx *store.Tx) error {
			var err error
			recorded, err = tx.PasswordRefused(ctx, id, passwordAt, msg, s.opt.Now().UTC())
			return err
		})
		if err == nil && !recorded {
			s.log.Info("refusal not recorded: already recorded, or another password was saved after this login read it", "mailbox_id", id)
		}
	}
	if err != nil {
		s.log.Error("record refused credentials", "mailbox_id", id, "err", err)
	}
}

// fetcher builds a mailbox's Fetcher with the transport its settings
// choose, giving it the credentials (never unsealed here).
func (s *Syncer) fetcher(ctx context.Context, mb store.Mailbox, log *slog.Logger, creds *sessionCreds) (Fetcher, Transport, error) {
	srv, err := s.opt.DB.MailboxServer(ctx, mb.ID)
	if err != nil {
		return nil, nil, err
	}
	name := transportFor(srv)
	transport, ok := s.opt.Transports[name]
	if !ok {
		return nil, nil, fmt.Errorf("no %s transport in this process", name)
	}
	sess := Session{Mailbox: mb, Server: srv, Username: mb.Address, Logger: log,
		Events: func(ev Event) { s.event(ctx, mb, ev) }}
	switch {
	case name == TransportGraph:
		if s.opt.OAuth == nil {
			return nil, nil, errors.New("no OAuth provider is configured")
		}
		if sess.Graph, err = s.opt.OAuth.GraphClient(ctx, mb.ID); err != nil {
			return nil, nil, err
		}
		f, err := transport.Fetcher(sess)
		return f, transport, err
	}
	switch srv.AuthMethod {
	case string(imapsync.AuthXOAuth2), string(imapsync.AuthOAuthBearer):
		if s.opt.OAuth == nil {
			return nil, nil, errors.New("no OAuth provider is configured")
		}
		// A bearer token goes only to a host its provider trusts. desk
		// refuses any other when an admin sets one; this holds too when
		// the configuration changed since, or a row was written otherwise:
		// the session does not even connect, and each token request
		// checks the host it is for.
		if err := s.opt.OAuth.CheckHost(ctx, mb.ID, srv.IMAPHost); err != nil {
			return nil, nil, err
		}
		sess.Token = permanentOn(s.opt.OAuth.HostTokenFunc(mb.ID, srv.IMAPHost, false))
		sess.RefreshToken = permanentOn(s.opt.OAuth.HostTokenFunc(mb.ID, srv.IMAPHost, true))
	default:
		a, err := s.opt.DB.MailboxAuth(ctx, mb.ID)
		if err != nil {
			return nil, nil, err
		}
		if s.opt.Passwords == nil {
			return nil, nil, store.ErrNoSecretKey
		}
		if srv.Username != "" {
			sess.Username = srv.Username
		} else if a.Account != "" {
			sess.Username = a.Account
		}
		passwords, id := s.opt.Passwords, mb.ID
		sess.Password = func(ctx context.Context) (string, error) {
			// The version of the password this login uses, read first: a
			// refusal is recorded only while it is still the saved one.
			if a, err := s.opt.DB.MailboxAuth(ctx, id); err == nil {
				creds.passwordAt.Store(a.AuthorizedAt.UnixMilli())
			}
			pw, err := passwords(ctx, id)
			if err != nil && !s.opt.DB.Transient(err) && ctx.Err() == nil {
				return "", fmt.Errorf("%w: %w", ErrPermanent, err) // a wrong key stays wrong
			}
			return pw, err
		}
	}
	f, err := transport.Fetcher(sess)
	return f, transport, err
}

// permanentOn marks the provider's final refusals as permanent, so the
// session stops instead of retrying (the oauth service has already
// recorded the mailbox's state).
func permanentOn(f func(context.Context) (string, error)) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := f(ctx)
		if err != nil && oauthFinal(err) {
			return "", fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		return tok, err
	}
}

// oauthFinal reports whether err is the provider's (or the settings')
// final refusal of a mailbox's token, or a token this process's secret key
// cannot open: retrying cannot help (another process, with the right key,
// can take the mailbox once this one lets it go).
func oauthFinal(err error) bool {
	return errors.Is(err, oauth.ErrNeedsReauth) || errors.Is(err, oauth.ErrProviderFault) || errors.Is(err, oauth.ErrNotConnected) ||
		errors.Is(err, oauth.ErrHostNotTrusted) || errors.Is(err, oauth.ErrNoGraph) || errors.Is(err, store.ErrSealed)
}

func (s *Syncer) event(ctx context.Context, mb store.Mailbox, ev Event) {
	switch ev.Kind {
	case EventConnected:
		s.metrics.connected.WithLabelValues(mb.Address).Set(1)
		s.status(ctx, mb.ID, store.SyncConnected, nil)
	case EventIdling:
		s.status(ctx, mb.ID, store.SyncIdling, nil)
	case EventSynced:
		s.status(ctx, mb.ID, store.SyncSynced, nil)
	case EventError, EventAuthFailed:
		s.metrics.connected.WithLabelValues(mb.Address).Set(0)
		s.metrics.errors.WithLabelValues(mb.Address).Inc()
		s.status(ctx, mb.ID, store.SyncError, ev.Err)
	}
}

// statusEvery is how often an unchanged up-to-date state is written again
// (its "last success" time): an idle session restarts IDLE every 20-25
// minutes and syncs, and 5,000 of them need not write twice each time.
const statusEvery = 10 * time.Minute

// status records a mailbox's sync state for the UI. Once "idling" is
// written, the up-to-date states that follow (each new mail and each IDLE
// restart is "synced" then "idling" again) are not written again within
// statusEvery: messages committed meanwhile record their own success time.
func (s *Syncer) status(ctx context.Context, id int64, state store.SyncState, cause error) {
	now := s.opt.Now().UTC()
	s.mu.Lock()
	last, ok := s.upToDate[id]
	switch {
	case !state.UpToDate() || cause != nil:
		delete(s.upToDate, id)
	case ok && now.Sub(last) < statusEvery:
		s.mu.Unlock()
		return
	case state == store.SyncIdling:
		s.upToDate[id] = now
	}
	s.mu.Unlock()
	err := s.opt.DB.Write(ctx, func(tx *store.Tx) error {
		st, err := tx.SyncStatus(ctx, id)
		if err != nil {
			return err
		}
		st.State, st.Owner, st.UpdatedAt = state, s.opt.Owner, now
		if cause != nil {
			st.LastError, st.LastErrorAt = cause.Error(), now
		} else if state.UpToDate() {
			st.LastSuccessAt = now
		}
		return tx.PutSyncStatus(ctx, st)
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("record sync status", "mailbox_id", id, "err", err)
	}
}
