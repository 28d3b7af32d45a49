package mailsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// round decides which mailboxes this process syncs. Its cost does not grow
// with the mailboxes held: a heartbeat (which, on PostgreSQL, also proves
// the lock connection alive), the mailbox list every Refresh (one query),
// the renewal of every lease every third of LeaseTTL (one statement), and
// the taking of new mailboxes only while below the fair share (one
// statement on PostgreSQL).
func (s *Syncer) round(ctx context.Context) error {
	now := s.opt.Now()
	live, err := s.hold.beat(ctx, now)
	if errors.Is(err, store.ErrLocksLost) {
		// Another process may hold this one's mailboxes already: stop
		// every session (their commits would fail the lease fence anyway)
		// before taking any lock again.
		if n := len(s.Running()); n > 0 {
			s.log.Warn("sync lock connection lost: stopping every mailbox before taking them again", "mailboxes", n, "err", err)
			s.stopAll()
			s.log.Info("every mailbox sync stopped")
		}
		if err := s.hold.reset(ctx); err != nil {
			return err
		}
		live, err = s.hold.beat(ctx, now)
	}
	if err != nil {
		return err
	}
	live = max(live, 1)
	if s.relist.Swap(false) || s.listedAt.IsZero() || now.Sub(s.listedAt) >= s.opt.Refresh || live != s.live {
		cands, err := s.opt.DB.SyncCandidates(ctx)
		if err != nil {
			return err
		}
		s.cands, s.listedAt = cands, now
	}
	s.live = live

	var usable []int64
	want := map[int64]bool{}
	settingsAt := map[int64]time.Time{}
	for _, c := range s.cands {
		if u := c.Usability(s.opt.OAuth != nil); !u.OK() {
			s.stop(c.MailboxID, u.Words())
			s.mu.Lock()
			delete(s.ended, c.MailboxID) // usable again (signed in, a new password): at once
			s.mu.Unlock()
			continue
		}
		want[c.MailboxID] = true
		settingsAt[c.MailboxID] = c.SettingsAt
		usable = append(usable, c.MailboxID)
	}
	s.mu.Lock()
	var gone, changed, mine []int64
	for id := range s.running {
		switch {
		case !want[id]:
			gone = append(gone, id)
		case !s.settings[id].Equal(settingsAt[id]):
			changed = append(changed, id)
		default:
			mine = append(mine, id)
		}
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.stop(id, "mailbox removed, disabled or not usable")
	}
	for _, id := range changed {
		s.stop(id, "settings changed") // restarted with the new settings once it has ended
	}

	// A fair share: each live process syncs at most ceil(mailboxes /
	// processes); one holding more (another process just joined) lets the
	// extra ones go, and the newcomer takes them over.
	share := (len(usable) + live - 1) / live
	slices.Sort(mine)
	for len(mine) > share {
		id := mine[len(mine)-1]
		mine = mine[:len(mine)-1]
		s.stop(id, fmt.Sprintf("fair share: %d processes for %d mailboxes", live, len(usable)))
	}
	if len(mine) > 0 && now.Sub(s.renewedAt) >= s.opt.LeaseTTL/3 {
		lost, err := s.hold.renew(ctx, mine, now)
		if err != nil {
			return fmt.Errorf("renew leases: %w", err)
		}
		s.renewedAt = now
		for _, id := range lost {
			s.stop(id, "another process holds the lease")
		}
		mine = missing(mine, lost)
	}
	need := share - len(mine) - len(changed)
	if need <= 0 {
		return nil
	}
	s.mu.Lock()
	var free []int64
	for _, id := range usable {
		if _, ok := s.running[id]; !ok && !s.heldBack(id, settingsAt[id], now) {
			free = append(free, id)
		}
	}
	s.mu.Unlock()
	if len(free) == 0 {
		return nil
	}
	got, err := s.hold.acquire(ctx, free, need, now)
	if err != nil {
		return fmt.Errorf("take mailboxes: %w", err)
	}
	if len(got) > 0 {
		s.log.Info("took mailboxes", "mailboxes", len(got), "share", share, "live_processes", live)
	}
	for _, id := range got {
		s.start(ctx, id, settingsAt[id])
	}
	return nil
}
