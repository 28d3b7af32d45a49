package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/postdesk/postdesk/internal/outage"
	"github.com/postdesk/postdesk/internal/store"
)

// The event dispatcher.
//
// A change worth telling someone adds a store.Event in its own transaction
// (store.Tx.AddEvent). The dispatcher claims undispatched events, oldest
// first, hands the batch to every registered EventConsumer and marks the
// events dispatched, all in ONE transaction: a consumer's writes (a webhook
// delivery row and its job, a notification's outbox row) commit with the
// dispatch mark or not at all, so each consumer hears of each event exactly
// once. On PostgreSQL a claimed event stays locked until that transaction
// ends and a concurrent dispatcher (another serve process) skips it
// (FOR UPDATE SKIP LOCKED); SQLite has a single writer.
//
// A dispatcher wakes right after the commit of a transaction that added
// events (store.DB.OnEventsCommitted) and every Interval anyway (events
// committed by another process, a wake-up lost at shutdown, a batch that
// failed). A batch that fails is rolled back and tried again event by
// event, so one event a consumer cannot take holds up no other; an event
// that keeps failing is given up after MaxAttempts tries (logged at error
// level, marked dispatched) rather than blocking the queue for ever.

// EventConsumer hears every event once, inside the dispatcher's transaction
// (its writes commit with the event's dispatch mark: a webhook delivery row
// + job, a notification's outbox row).
//
// Register one with Dispatcher.Register before Dispatcher.Start. Consume
// must only write through tx (and tx.AfterCommit for effects outside the
// database); an error rolls the whole batch back and the events are offered
// again later.
type EventConsumer interface {
	Name() string
	Consume(ctx context.Context, tx *store.Tx, events []store.Event) error
}

// DispatcherOptions configures a Dispatcher.
type DispatcherOptions struct {
	DB     *store.DB
	Logger *slog.Logger
	// Interval is the periodic fallback between looks (default 3 s).
	Interval time.Duration
	// Batch is how many events one transaction claims (default 100).
	Batch int
	// MaxAttempts: an event whose dispatch failed this many times alone
	// (in this process) is given up (default 10).
	MaxAttempts int
	Now         func() time.Time
}

// Dispatcher hands committed events to the registered consumers. Safe for
// concurrent use.
type Dispatcher struct {
	opt DispatcherOptions
	db  *store.DB
	log *slog.Logger

	mu        sync.Mutex
	consumers []EventConsumer
	started   bool
	failures  map[int64]int // event id → failed single-event dispatches
	failing   *outage.Log   // the loop's failures, logged when they start, go on and end
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	base      context.Context
	cancel    context.CancelFunc
}

// NewDispatcher returns a Dispatcher (not started).
func NewDispatcher(opt DispatcherOptions) (*Dispatcher, error) {
	if opt.DB == nil {
		return nil, errors.New("event dispatcher: no database")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Interval <= 0 {
		opt.Interval = 3 * time.Second
	}
	if opt.Batch <= 0 {
		opt.Batch = 100
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 10
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	d := &Dispatcher{opt: opt, db: opt.DB, log: opt.Logger.With("component", "events"),
		failures: map[int64]int{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	d.failing = outage.New(d.log, slog.LevelError, "dispatch events")
	d.base, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Register adds a consumer. Call it before Start; consumers hear events in
// the order they were registered.
func (d *Dispatcher) Register(c EventConsumer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.consumers = append(d.consumers, c)
}

func (d *Dispatcher) registered() []EventConsumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]EventConsumer(nil), d.consumers...)
}

// Wake makes the dispatcher look for events now (it never blocks). serve
// passes it to store.DB.OnEventsCommitted.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the dispatcher in this process until Stop: at once, on every
// Wake, and every Interval.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return
	}
	d.started = true
	d.mu.Unlock()
	go func() {
		defer close(d.done)
		t := time.NewTicker(d.opt.Interval)
		defer t.Stop()
		for {
			d.runSafely()
			select {
			case <-d.stop:
				return
			case <-d.wake:
			case <-t.C:
			}
		}
	}()
}

func (d *Dispatcher) runSafely() {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("event dispatcher panicked", "panic", fmt.Sprint(p))
		}
	}()
	if _, err := d.Dispatch(d.base); err != nil && d.base.Err() == nil {
		d.failing.Failed(err)
	} else if err == nil {
		d.failing.Done()
	}
}

// Stop ends the loop: the batch being dispatched finishes until ctx ends,
// then it is cancelled (its events are offered again by the next dispatcher).
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	started := d.started
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	d.mu.Unlock()
	if !started {
		d.cancel()
		return nil
	}
	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-d.done
		return ctx.Err()
	}
}

// Dispatch hands every undispatched event to the consumers, batch by
// batch, and returns how many events were dispatched. It is what the loop
// runs; tests call it directly.
func (d *Dispatcher) Dispatch(ctx context.Context) (int, error) {
	total := 0
	for {
		n, claimed, err := d.batch(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if claimed < d.opt.Batch {
			return total, nil
		}
		select {
		case <-d.stop:
			return total, nil
		default:
		}
	}
}

// batch dispatches one batch; on failure it dispatches the batch's events
// one at a time. It returns the events dispatched and claimed.
func (d *Dispatcher) batch(ctx context.Context) (dispatched, claimed int, err error) {
	consumers := d.registered()
	var ids []int64
	err = d.db.Write(ctx, func(tx *store.Tx) error {
		events, err := tx.ClaimEvents(ctx, d.opt.Batch)
		if err != nil {
			return err
		}
		claimed = len(events)
		if len(events) == 0 {
			return nil
		}
		ids = eventIDs(events)
		return d.consume(ctx, tx, consumers, events)
	})
	if err == nil {
		d.forget(ids)
		return claimed, claimed, nil
	}
	if ctx.Err() != nil || len(ids) == 0 {
		return 0, claimed, err
	}
	d.log.Warn("event batch failed: dispatching its events one by one", "events", len(ids), "err", err)
	for _, id := range ids {
		ok, err := d.one(ctx, consumers, id)
		if err != nil {
			return dispatched, claimed, err
		}
		if ok {
			dispatched++
		}
	}
	return dispatched, claimed, nil
}

// one dispatches the event id alone if it is still undispatched; it
// reports whether it was dispatched (or given up). A consumer's failure is
// counted and logged, not returned.
func (d *Dispatcher) one(ctx context.Context, consumers []EventConsumer, id int64) (bool, error) {
	var consumeErr error
	err := d.db.Write(ctx, func(tx *store.Tx) error {
		ev, err := tx.ClaimEvent(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // dispatched meanwhile, or locked by another dispatcher
		}
		if err != nil {
			return err
		}
		consumeErr = d.consume(ctx, tx, consumers, []store.Event{ev})
		if consumeErr == nil {
			return nil
		}
		if d.failed(id) < d.opt.MaxAttempts {
			return consumeErr
		}
		return errGiveUp // dispatched below, without the failing consumers
	})
	if errors.Is(err, errGiveUp) {
		err = d.giveUp(ctx, consumers, id)
		if err == nil {
			d.forget([]int64{id})
		}
		return err == nil, err
	}
	if consumeErr != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		d.log.Warn("event dispatch failed; it is tried again later", "event_id", id, "err", consumeErr)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d.forget([]int64{id})
	return true, nil
}

var errGiveUp = errors.New("give up event")

// giveUp dispatches the event id to each consumer in a savepoint of its
// own, keeping the writes of those that take it and giving it up for those
// that keep failing: one failing consumer (a webhook) does not cost the
// event its others (the agents' notifications).
func (d *Dispatcher) giveUp(ctx context.Context, consumers []EventConsumer, id int64) error {
	return d.db.Write(ctx, func(tx *store.Tx) error {
		ev, err := tx.ClaimEvent(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil // dispatched meanwhile, or locked by another dispatcher
		}
		if err != nil {
			return err
		}
		for _, c := range consumers {
			err := tx.Savepoint(ctx, func() error { return c.Consume(ctx, tx, []store.Event{ev}) })
			if err != nil && ctx.Err() == nil {
				d.log.Error("event given up for one consumer: it kept failing", "event_id", id, "consumer", c.Name(), "attempts", d.opt.MaxAttempts, "err", err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return tx.MarkEventsDispatched(ctx, []int64{id}, d.opt.Now())
	})
}

// consume hands events to every consumer and marks them dispatched.
func (d *Dispatcher) consume(ctx context.Context, tx *store.Tx, consumers []EventConsumer, events []store.Event) error {
	for _, c := range consumers {
		if err := c.Consume(ctx, tx, events); err != nil {
			return fmt.Errorf("event consumer %s: %w", c.Name(), err)
		}
	}
	return tx.MarkEventsDispatched(ctx, eventIDs(events), d.opt.Now())
}

func (d *Dispatcher) failed(id int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures[id]++
	return d.failures[id]
}

func (d *Dispatcher) forget(ids []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.failures, id)
	}
}

func eventIDs(events []store.Event) []int64 {
	ids := make([]int64, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}
