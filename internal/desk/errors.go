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

// fieldErrors gathers a form's mistakes, the first for each field.
type fieldErrors []error

// add keeps err (a *ValidationError) unless it is nil or its field has one.
func (fe *fieldErrors) add(err error) {
	if err == nil {
		return
	}
	var v *ValidationError
	if errors.As(err, &v) {
		for _, prev := range *fe {
			if p, ok := prev.(*ValidationError); ok && p.Field == v.Field {
				return
			}
		}
		*fe = append(*fe, v)
		return
	}
	*fe = append(*fe, err)
}

// err is nil, the one mistake, or all of them joined (errors.As finds the
// first; FieldErrors lists them all).
func (fe fieldErrors) err() error {
	switch len(fe) {
	case 0:
		return nil
	case 1:
		return fe[0]
	}
	return errors.Join(fe...)
}

// FieldErrors lists every *ValidationError in err, which may join several
// (a form's mistakes, one per field), in order.
func FieldErrors(err error) []*ValidationError {
	var out []*ValidationError
	var walk func(error)
	walk = func(err error) {
		if v, ok := err.(*ValidationError); ok {
			out = append(out, v)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}
