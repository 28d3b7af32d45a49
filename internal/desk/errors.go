package desk

import (
	"errors"
	"fmt"
)

// ErrInvalid matches every error caused by the caller's input (a
// *ValidationError): test with errors.Is, read the sentence with errors.As.
var ErrInvalid = errors.New("invalid input")

// ErrExists is wrapped by the *ValidationError of adding a mailbox whose
// address is taken.
var ErrExists = errors.New("already exists")

// ValidationError is a caller's mistake: which field it is about (as the
// API names it: "imap_host", "folders"; "" for the request as a whole) and
// the sentence that tells people what to change. Surfaces show Message as
// it is and may point at Field (the CLI names its flag).
type ValidationError struct {
	Field   string
	Message string
	Err     error // a more precise cause to match (ErrExists), or nil
}

func (e *ValidationError) Error() string { return e.Message }

// Is matches ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the precise cause, if any.
func (e *ValidationError) Unwrap() error { return e.Err }

// invalid returns a *ValidationError about field.
func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Message is the sentence of err's *ValidationError for people, and
// whether there is one.
func Message(err error) (string, bool) {
	var v *ValidationError
	if errors.As(err, &v) {
		return v.Message, true
	}
	return "", false
}
