package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // every IANA zone, also on hosts without a zoneinfo folder

	"github.com/postdesk/postdesk/internal/store"
)

// This file is what every user changes about themselves (their profile:
// name, time zone, notification choices, followed mailboxes; their
// password) and the invitation link that lets a user set their first
// password.

// Profile is a user's own settings.
type Profile struct {
	Name     string
	TimeZone string // an IANA name; "" or "UTC" is UTC
	Notify   store.NotifyChoices
	// Follows are the mailboxes whose new tickets the user hears of.
	Follows []int64
}

// LoadZone returns the location of an IANA zone name ("" is UTC), or a
// *ValidationError about field "time_zone".
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		return nil, invalid("time_zone", "%q is not a time zone: choose one from the list, like Europe/Berlin.", name)
	}
	return loc, nil
}

// UpdateProfile replaces a user's profile in one transaction.
func (s *Service) UpdateProfile(ctx context.Context, userID int64, p Profile) (store.User, error) {
	name, err := checkName(p.Name)
	if err != nil {
		return store.User{}, err
	}
	if _, err := LoadZone(p.TimeZone); err != nil {
		return store.User{}, err
	}
	if p.TimeZone == "UTC" {
		p.TimeZone = ""
	}
	var u store.User
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		for _, id := range p.Follows {
			mb, err := tx.Mailbox(ctx, id)
			if errors.Is(err, store.ErrNotFound) || (err == nil && mb.Removed()) {
				return invalid("follows", "Mailbox %d does not exist (any more): reload the page and choose again.", id)
			}
			if err != nil {
				return err
			}
		}
		for _, f := range []func() error{
			func() error { return tx.SetUserName(ctx, userID, name) },
			func() error { return tx.SetUserTimeZone(ctx, userID, p.TimeZone) },
			func() error { return tx.SetNotifyChoices(ctx, userID, p.Notify) },
			func() error { return tx.SetFollowedMailboxes(ctx, userID, p.Follows) },
		} {
			if err := f(); err != nil {
				return err
			}
		}
		var err error
		u, err = tx.User(ctx, userID)
		return err
	})
	var v *ValidationError
	if errors.As(err, &v) || errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("update profile of user %d: %w", userID, err)
	}
	return u, nil
}

// ChangePassword sets a user's password after checking their current one,
// counted and backed off exactly like a sign-in (a stolen session cannot
// guess it faster): a wrong one is a *ValidationError wrapping
// ErrWrongPassword, a back-off a *ThrottledError, too many checks at once
// ErrBusy. Every other session of the user ends; keepSession stays.
func (s *Service) ChangePassword(ctx context.Context, userID int64, current, next string, keepSession int64, ip string) error {
	if current == "" {
		return invalid("current_password", "Enter your current password.")
	}
	if err := checkPassword("new_password", next); err != nil {
		return err
	}
	u, err := s.db.User(ctx, userID)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if err := s.precheck(ctx, u.Email, ip); err != nil {
		return err
	}
	release, err := s.hashes.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	att, err := s.beginAttempt(ctx, u.Email, ip)
	if err != nil {
		return err
	}
	if !CheckPassword(u.PasswordHash, current) {
		s.failed(att)
		return invalidBecause(ErrWrongPassword, "current_password", "The current password is wrong.")
	}
	s.endAttempt(ctx, att, true)
	hash, err := HashPassword(next)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetPasswordHash(ctx, userID, hash); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, userID, keepSession); err != nil {
			return err
		}
		return tx.DeleteInvitations(ctx, userID)
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	s.log.Info("password changed", "user_id", userID)
	return nil
}

// ErrInvitationInvalid is an invitation link that is unknown, used,
// expired or replaced by a newer one, or whose user is disabled.
var ErrInvitationInvalid = errors.New("invitation not valid")

// Invitation returns the user a live invitation token is for.
func (s *Service) Invitation(ctx context.Context, token string) (store.User, store.Invitation, error) {
	inv, u, err := s.db.InvitationByHash(ctx, HashToken(token), s.now().UTC())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.DisabledAt.IsZero()) {
		return store.User{}, store.Invitation{}, ErrInvitationInvalid
	}
	if err != nil {
		return store.User{}, store.Invitation{}, fmt.Errorf("read invitation: %w", err)
	}
	return u, inv, nil
}

// AcceptInvitation uses an invitation: it sets the user's password, ends
// their other sessions and opens a new one, as Login does.
func (s *Service) AcceptInvitation(ctx context.Context, token, password, userAgent, ip string) (string, store.Session, store.User, error) {
	if _, _, err := s.Invitation(ctx, token); err != nil {
		return "", store.Session{}, store.User{}, err
	}
	if err := checkPassword("password", password); err != nil {
		return "", store.Session{}, store.User{}, err
	}
	release, err := s.hashes.Acquire(ctx)
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	hash, err := HashPassword(password)
	release()
	if err != nil {
		return "", store.Session{}, store.User{}, err
	}
	now := s.now().UTC()
	sessToken := RandomToken(32)
	sess := store.Session{TokenHash: HashToken(sessToken), CSRFToken: RandomToken(32),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.sessionTTL), UserAgent: truncate(userAgent, 200), IP: ip}
	var u store.User
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		inv, err := tx.UseInvitation(ctx, HashToken(token), now)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvitationInvalid // used at the same moment elsewhere
		}
		if err != nil {
			return err
		}
		if u, err = tx.User(ctx, inv.UserID); err != nil {
			return err
		}
		if !u.DisabledAt.IsZero() {
			return ErrInvitationInvalid
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, u.ID, 0); err != nil {
			return err
		}
		sess.UserID = u.ID
		if err := tx.CreateSession(ctx, &sess); err != nil {
			return err
		}
		return tx.RecordSignIn(ctx, u.ID, now)
	})
	if errors.Is(err, ErrInvitationInvalid) {
		return "", store.Session{}, store.User{}, err
	}
	if err != nil {
		return "", store.Session{}, store.User{}, fmt.Errorf("accept invitation: %w", err)
	}
	u.PasswordHash, u.LastSignInAt = hash, now.Truncate(time.Millisecond)
	s.log.Info("invitation accepted", "user_id", u.ID, "session_id", sess.ID)
	return sessToken, sess, u, nil
}
