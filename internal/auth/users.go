package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/postdesk/postdesk/internal/store"
)

// This file is every change an administrator makes to users, shared by
// Admin -> Users, the API's /users and the CLI's "postdesk user": add,
// role, disable and enable, reset password. Each takes the acting user
// ("by"; the zero User is the command line, which may do anything) and
// refuses with a *ValidationError.
//
// Invariant: there is always an active admin (not disabled, with a
// password). A change that would remove the last one is refused with
// ErrLastAdmin, checked in the change's transaction.

// How a new user, or one whose password is reset, gets a password.
const (
	// SetupPassword: a generated password, shown once to the admin.
	SetupPassword = "password"
	// SetupInvite: a single-use link that lets the user set their own.
	SetupInvite = "invite"
)

// InvitationTTL is how long an invitation link works.
const InvitationTTL = 7 * 24 * time.Hour

// Password bounds: long enough to resist guessing, short enough that
// hashing stays cheap.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// maxNameLen bounds a display name.
const maxNameLen = 100

// NewUser is an admin's request to add a user.
type NewUser struct {
	Email string
	Name  string
	Role  string // store.RoleAdmin or store.RoleAgent
	// Setup is SetupPassword or SetupInvite.
	Setup string
	// Password, with SetupPassword, is the password to use instead of a
	// generated one (the CLI reads it from stdin).
	Password string
}

// Credentials are what an admin hands to a user, shown once: a generated
// password, or an invitation token (the link is /invite/<token>).
type Credentials struct {
	Password      string
	InviteToken   string
	InviteExpires time.Time
}

// AddUser adds a user as req says and returns the credentials to hand them.
func (s *Service) AddUser(ctx context.Context, by store.User, req NewUser) (store.User, Credentials, error) {
	email, err := checkEmail(req.Email)
	if err != nil {
		return store.User{}, Credentials{}, err
	}
	name, err := checkName(req.Name)
	if err != nil {
		return store.User{}, Credentials{}, err
	}
	if err := checkRole(req.Role); err != nil {
		return store.User{}, Credentials{}, err
	}
	if req.Setup != SetupPassword && req.Setup != SetupInvite {
		return store.User{}, Credentials{}, invalid("setup", "Choose how the user gets a password: a generated password or an invitation link.")
	}
	var creds Credentials
	var hash string
	if req.Setup == SetupPassword {
		if creds.Password, hash, err = s.newPassword(ctx, req.Password); err != nil {
			return store.User{}, Credentials{}, err
		}
	}
	var u store.User
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := mayAdminister(ctx, tx, by); err != nil {
			return err
		}
		var err error
		u, err = tx.CreateUser(ctx, store.User{Email: email, Name: name, Role: req.Role, PasswordHash: hash})
		if err != nil {
			return err
		}
		if req.Setup == SetupInvite {
			creds, err = s.invite(ctx, tx, u.ID, by.ID)
		}
		return err
	})
	var v *ValidationError
	if errors.As(err, &v) {
		return store.User{}, Credentials{}, err
	}
	if errors.Is(err, store.ErrConflict) {
		return store.User{}, Credentials{}, invalidBecause(ErrEmailTaken, "email", "A user with the email %s already exists.", email)
	}
	if err != nil {
		return store.User{}, Credentials{}, fmt.Errorf("add user: %w", err)
	}
	s.log.Info("user added", "user_id", u.ID, "role", u.Role, "setup", req.Setup, "by_user_id", by.ID)
	return u, creds, nil
}

// UserChange is an admin's change to a user; nil fields stay as they are.
type UserChange struct {
	Role     *string
	Disabled *bool
}

// SetRole changes a user's role; demoting the last active admin is refused.
func (s *Service) SetRole(ctx context.Context, by store.User, userID int64, role string) (store.User, error) {
	return s.ChangeUser(ctx, by, userID, UserChange{Role: &role})
}

// SetDisabled disables or enables a user (see ChangeUser).
func (s *Service) SetDisabled(ctx context.Context, by store.User, userID int64, disabled bool) (store.User, error) {
	return s.ChangeUser(ctx, by, userID, UserChange{Disabled: &disabled})
}

// ChangeUser applies c in one transaction: all of it or nothing. Demoting
// or disabling the last active admin is refused, and so is disabling
// oneself. Disabling ends every session of the user and their invitation
// in the same transaction; their API keys stay but are refused while they
// are disabled (auth.APIKey), so both stop on the very next request.
func (s *Service) ChangeUser(ctx context.Context, by store.User, userID int64, c UserChange) (store.User, error) {
	if c.Role != nil {
		if err := checkRole(*c.Role); err != nil {
			return store.User{}, err
		}
	}
	if c.Disabled != nil && *c.Disabled && by.ID != 0 && by.ID == userID {
		return store.User{}, invalidBecause(ErrSelf, "disabled", "You cannot disable your own account: ask another admin.")
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	return s.changeUser(ctx, by, userID, "role_or_disabled", func(tx *store.Tx, u *store.User) error {
		if c.Role != nil && *c.Role != u.Role {
			if *c.Role != store.RoleAdmin {
				if err := lastAdminGuard(ctx, tx, *u, "role", "make them an agent"); err != nil {
					return err
				}
			}
			u.Role = *c.Role
			if err := tx.SetUserRole(ctx, u.ID, u.Role); err != nil {
				return err
			}
		}
		switch {
		case c.Disabled == nil || *c.Disabled == !u.DisabledAt.IsZero():
			return nil
		case !*c.Disabled:
			u.DisabledAt = time.Time{}
			return tx.SetUserDisabled(ctx, u.ID, time.Time{})
		}
		if err := lastAdminGuard(ctx, tx, *u, "disabled", "disable them"); err != nil {
			return err
		}
		u.DisabledAt = now
		if err := tx.SetUserDisabled(ctx, u.ID, now); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, u.ID, 0); err != nil {
			return err
		}
		return tx.DeleteInvitations(ctx, u.ID)
	})
}

// ResetPassword gives a user a new way in (SetupPassword: a generated
// password; SetupInvite: an invitation link, their old password stops
// working). Either way their sessions end. Admins change their own
// password on their profile instead.
func (s *Service) ResetPassword(ctx context.Context, by store.User, userID int64, setup string) (Credentials, error) {
	if by.ID != 0 && by.ID == userID {
		return Credentials{}, invalidBecause(ErrSelf, "", "Change your own password on your profile page.")
	}
	if setup != SetupPassword && setup != SetupInvite {
		return Credentials{}, invalid("setup", "Choose a generated password or an invitation link.")
	}
	var creds Credentials
	var hash string
	if setup == SetupPassword {
		var err error
		if creds.Password, hash, err = s.newPassword(ctx, ""); err != nil {
			return Credentials{}, err
		}
	}
	_, err := s.changeUser(ctx, by, userID, "", func(tx *store.Tx, u *store.User) error {
		if !u.DisabledAt.IsZero() {
			return invalid("", "%s is disabled: enable them first.", u.Email)
		}
		if setup == SetupInvite {
			if err := lastAdminGuard(ctx, tx, *u, "", "replace their password with an invitation (use a generated password)"); err != nil {
				return err
			}
		}
		if err := tx.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := tx.DeleteUserSessions(ctx, u.ID, 0); err != nil {
			return err
		}
		if setup == SetupPassword {
			return tx.DeleteInvitations(ctx, u.ID)
		}
		var err error
		creds, err = s.invite(ctx, tx, u.ID, by.ID)
		return err
	})
	if err != nil {
		return Credentials{}, err
	}
	s.log.Info("password reset", "user_id", userID, "setup", setup, "by_user_id", by.ID)
	return creds, nil
}

// changeUser runs change on user userID in one transaction and returns the
// user as changed. No such user is store.ErrNotFound.
func (s *Service) changeUser(ctx context.Context, by store.User, userID int64, what string, change func(*store.Tx, *store.User) error) (store.User, error) {
	var u store.User
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := mayAdminister(ctx, tx, by); err != nil {
			return err
		}
		var err error
		if u, err = tx.User(ctx, userID); err != nil {
			return err
		}
		return change(tx, &u)
	})
	var v *ValidationError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &v) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("change user %d: %w", userID, err)
	}
	if what != "" {
		s.log.Info("user changed", "user_id", userID, "field", what, "role", u.Role, "disabled", !u.DisabledAt.IsZero(), "by_user_id", by.ID)
	}
	return u, nil
}

// lastAdminGuard refuses a change that stops u being an active admin when
// u is the last one.
func lastAdminGuard(ctx context.Context, tx *store.Tx, u store.User, field, doing string) error {
	ids, err := tx.ActiveAdminIDs(ctx)
	if err != nil {
		return err
	}
	if len(ids) == 1 && ids[0] == u.ID {
		return invalidBecause(ErrLastAdmin, field,
			"%s is the last active admin: make another user an admin first, then %s.", u.Email, doing)
	}
	return nil
}

// invite stores a new invitation for userID (replacing any earlier one).
func (s *Service) invite(ctx context.Context, tx *store.Tx, userID, by int64) (Credentials, error) {
	token := RandomToken(32)
	now := s.now().UTC()
	inv := store.Invitation{TokenHash: HashToken(token), UserID: userID, CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	if err := tx.CreateInvitation(ctx, inv); err != nil {
		return Credentials{}, err
	}
	return Credentials{InviteToken: token, InviteExpires: inv.ExpiresAt}, nil
}

// newPassword returns password (generated when empty) and its hash,
// hashed under the service's hashing bound.
func (s *Service) newPassword(ctx context.Context, password string) (string, string, error) {
	if password == "" {
		password = RandomToken(15)
	}
	if err := checkPassword("password", password); err != nil {
		return "", "", err
	}
	release, err := s.hashes.Acquire(ctx)
	if err != nil {
		return "", "", err
	}
	defer release()
	hash, err := HashPassword(password)
	return password, hash, err
}

// mayAdminister refuses an actor who is not an active admin, as the
// database knows them now (in tx, so a demotion that just committed
// counts); the zero User is the command line.
func mayAdminister(ctx context.Context, tx *store.Tx, by store.User) error {
	if by.ID == 0 {
		return nil
	}
	u, err := tx.User(ctx, by.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.Role != store.RoleAdmin || !u.DisabledAt.IsZero())) {
		return invalidBecause(ErrNotAdmin, "", "Only an admin can manage users.")
	}
	return err
}

func checkEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if email == "" || err != nil || a.Address != email || a.Name != "" {
		return "", invalid("email", "Enter an email address like ann@example.com.")
	}
	// RFC 5321's limits: no mail system delivers to a longer address.
	if at := strings.LastIndexByte(email, '@'); at > 64 || len(email) > 254 {
		return "", invalid("email", "That address is too long: an email address has at most 64 characters before the @ and 254 in all.")
	}
	return email, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if len([]rune(name)) > maxNameLen {
		return "", invalid("name", "The name is too long: at most %d characters.", maxNameLen)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return "", invalid("name", "The name cannot contain line breaks or control characters.")
	}
	return name, nil
}

func checkRole(role string) error {
	if !slices.Contains([]string{store.RoleAdmin, store.RoleAgent}, role) {
		return invalid("role", "The role must be admin or agent.")
	}
	return nil
}

func checkPassword(field, pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return invalid(field, "The password must be at least %d characters.", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return invalid(field, "The password is too long: at most %d characters.", MaxPasswordLen)
	}
	return nil
}
