package auth

import (
	"errors"
	"fmt"
)

// ErrInvalid matches every refusal of a user or profile change caused by
// the caller's input (a *ValidationError): test with errors.Is, read the
// field and sentence with errors.As.
var ErrInvalid = errors.New("invalid input")

// Precise causes a *ValidationError may wrap, for surfaces that answer
// them differently (the API's 409, the CLI's hint).
var (
	// ErrEmailTaken: another user has the email.
	ErrEmailTaken = errors.New("email taken")
	// ErrLastAdmin: the change would leave no active admin.
	ErrLastAdmin = errors.New("last active admin")
	// ErrWrongPassword: the current password given to change it is wrong.
	ErrWrongPassword = errors.New("wrong current password")
	// ErrNotAdmin: only an admin may make the change.
	ErrNotAdmin = errors.New("not an admin")
	// ErrSelf: an admin may not make this change to their own account.
	ErrSelf = errors.New("own account")
)

// ValidationError is a refused change to a user: the field it is about
// (as the API names it: "email", "role", "time_zone"; "" for the request
// as a whole) and the sentence that tells people what to change. Surfaces
// show Message as it is.
type ValidationError struct {
	Field   string
	Message string
	Err     error // a more precise cause (ErrLastAdmin, ...), or nil
}

func (e *ValidationError) Error() string { return e.Message }

// Is matches ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the precise cause, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func invalidBecause(cause error, field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...), Err: cause}
}
