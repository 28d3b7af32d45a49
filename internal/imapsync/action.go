package imapsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/emersion/go-imap/v2"
)

// afterProcessing applies Config.AfterProcessing to the handled UIDs of the
// selected folder, once they are committed. A failure is returned (the
// session ends and Run reconnects) but the messages stay handled: their
// checkpoint has moved, so the action is not tried again.
func (s *session) afterProcessing(ctx context.Context, log *slog.Logger, uids []uint32) error {
	if len(uids) == 0 || s.cfg.AfterProcessing == ActionLeave {
		return nil
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	switch s.cfg.AfterProcessing {
	case ActionSeen:
		if err := s.addFlag(set, imap.FlagSeen); err != nil {
			return fmt.Errorf("mark seen: %w", err)
		}
	case ActionMove:
		if err := s.move(set); err != nil {
			return fmt.Errorf("move to %s: %w", s.cfg.MoveTo, err)
		}
	}
	log.Debug("imap after-processing done", "action", s.cfg.AfterProcessing, "count", len(uids))
	return nil
}

// addFlag is UID STORE set +FLAGS.SILENT (flag), RFC 9051 6.4.6.
func (s *session) addFlag(set imap.UIDSet, flag imap.Flag) error {
	return s.wait(func() error {
		return s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil).Close()
	})
}

// move moves set to MoveTo: UID MOVE (RFC 6851 3.2), or UID COPY, \Deleted
// and UID EXPUNGE (RFC 4315 2.1) of exactly these UIDs. A plain EXPUNGE could
// remove messages someone else marked \Deleted, so without UIDPLUS the
// messages are left where they are. A missing target folder (NO [TRYCREATE],
// RFC 9051 7.1) is created once.
func (s *session) move(set imap.UIDSet) error {
	var do func() error
	switch {
	case s.hasMove():
		do = func() error { _, err := s.c.Move(set, s.cfg.MoveTo).Wait(); return err }
	case s.hasUIDPlus():
		do = func() error {
			if _, err := s.c.Copy(set, s.cfg.MoveTo).Wait(); err != nil {
				return err
			}
			if err := s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				return err
			}
			return s.c.UIDExpunge(set).Close()
		}
	default:
		s.log.Warn("imap server has neither MOVE nor UIDPLUS; leaving processed messages in place", "move_to", s.cfg.MoveTo)
		return nil
	}
	err := s.wait(do)
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeTryCreate {
		s.log.Info("imap creating the after-processing folder", "move_to", s.cfg.MoveTo)
		if err := s.wait(s.c.Create(s.cfg.MoveTo, nil).Wait); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		err = s.wait(do)
	}
	return err
}
