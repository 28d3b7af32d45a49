package desk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// SetPaused pauses (no mail is fetched, nothing else changes) or resumes
// fetching a mailbox's mail. A missing mailbox is store.ErrNotFound.
func (a *Admin) SetPaused(ctx context.Context, id int64, paused bool) (store.Mailbox, error) {
	spec, err := a.Spec(ctx, id)
	if err != nil {
		return store.Mailbox{}, err
	}
	if spec.Auth == "" {
		return store.Mailbox{}, invalid("", "mailbox %s has no server settings: there is nothing to pause", spec.Address)
	}
	spec.Disabled = paused
	up, err := a.UpdateMailbox(ctx, id, spec)
	return up.Mailbox, err
}

// RemoveMailboxID is RemoveMailbox by the mailbox's id: a missing (or
// already removed) mailbox is store.ErrNotFound.
func (a *Admin) RemoveMailboxID(ctx context.Context, id int64) (deleted bool, err error) {
	mb, err := a.db.Mailbox(ctx, id)
	if err == nil && mb.Removed() {
		err = store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("remove mailbox %d: %w", id, err)
	}
	return a.RemoveMailbox(ctx, mb.Address)
}

// changeNote is an UpdateMailbox's entry in the mailbox's activity, or ""
// when nothing an admin reads there changed.
func changeNote(cur, spec MailboxSpec) string {
	switch {
	case cur.Disabled != spec.Disabled && spec.Disabled:
		return "Paused: no mail is fetched until it is resumed"
	case cur.Disabled != spec.Disabled:
		return "Resumed: fetching again from where it stopped"
	}
	var parts []string
	if !slices.Equal(cur.Folders, spec.Folders) && len(spec.Folders) > 0 {
		parts = append(parts, "folders "+strings.Join(spec.Folders, ", "))
	}
	if cur.AfterProcessing != spec.AfterProcessing && spec.AfterProcessing != "" {
		parts = append(parts, "after processing "+spec.AfterProcessing)
	}
	if cur.Name != spec.Name {
		parts = append(parts, "name")
	}
	if cur.Signature != spec.Signature {
		parts = append(parts, "signature")
	}
	if cur.SaveSent != nil && spec.SaveSent != nil && *cur.SaveSent != *spec.SaveSent {
		parts = append(parts, map[bool]string{true: "copies of sent replies saved to Sent", false: "no copies of sent replies saved to Sent"}[*spec.SaveSent])
	}
	switch {
	case cur.AckEnabled != spec.AckEnabled && spec.AckEnabled:
		parts = append(parts, "acknowledgements on")
	case cur.AckEnabled != spec.AckEnabled:
		parts = append(parts, "acknowledgements off")
	}
	if cur.AckTemplate != spec.AckTemplate {
		parts = append(parts, "acknowledgement text")
	}
	if spec.Password != "" {
		parts = append(parts, "password")
	}
	if len(parts) == 0 {
		return ""
	}
	return "Settings changed: " + strings.Join(parts, "; ")
}

// EnsureMailbox returns the mailbox of address, creating it without a
// sign-in or server settings when there is none (an import of .eml or
// mbox files into a mailbox that is not fetched); created says so. A
// removed mailbox is brought back, still without a sign-in.
func (a *Admin) EnsureMailbox(ctx context.Context, address string) (mb store.Mailbox, created bool, err error) {
	address = strings.ToLower(strings.TrimSpace(address))
	err = a.db.Write(ctx, func(tx *store.Tx) error {
		mb, err = tx.MailboxByAddress(ctx, address)
		switch {
		case err == nil && mb.Removed():
			if err := tx.RestoreMailbox(ctx, mb.ID, mb.Name); err != nil {
				return err
			}
			mb.RemovedAt = time.Time{}
			return nil
		case errors.Is(err, store.ErrNotFound):
			if at := strings.LastIndex(address, "@"); at < 1 || at == len(address)-1 {
				return invalid("address", "%q is not an email address", address)
			}
			mb, err = tx.CreateMailbox(ctx, address, "")
			created = err == nil
			return err
		}
		return err
	})
	if err != nil {
		return store.Mailbox{}, false, fmt.Errorf("ensure mailbox %s: %w", address, err)
	}
	return mb, created, nil
}
