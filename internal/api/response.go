package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// errorResponse is the one error shape of the API. Field names the
// request's field a refused input (422) is about, when it is about one.
type errorResponse struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	// Errors lists every refused field when there is more than one
	// (Error and Field are the first).
	Errors []fieldError `json:"errors,omitempty"`
}

// fieldError is one refused field of a request.
type fieldError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// writeJSON answers status with v as JSON. Responses are private and never cached.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeInternalError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(append(body, '\n'))
	}
}

// writeError answers status with {"error": message}.
func writeError(w http.ResponseWriter, r *http.Request, status int, message string) {
	writeJSON(w, r, status, errorResponse{Error: message})
}

// writeInternalError answers 500 with an incident id; err is logged under
// that id with the request's line and never shown to the client.
func writeInternalError(w http.ResponseWriter, r *http.Request, err error) {
	writeIncident(w, r, err, "internal server error", "the error has been logged; please try again or report the incident id")
}

// writeIncident is writeInternalError for a failure the client can be told
// more about: "what (incident id): advice".
//
// The database out of reach is a 503 that says so (with Retry-After), not
// an incident: the request can be sent again as it is.
func writeIncident(w http.ResponseWriter, r *http.Request, err error, what, advice string) {
	ri := info(r)
	ri.problem = err
	if store.Unavailable(err) {
		w.Header().Set("Retry-After", "10")
		writeError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("the database is out of reach (incident %s): try again shortly", ri.id))
		return
	}
	writeError(w, r, http.StatusInternalServerError, fmt.Sprintf("%s (incident %s): %s", what, ri.id, advice))
}

// writeDeskError answers an error from a desk operation: the caller's
// mistake (desk.ErrInvalid) is 422 with its message, a missing ticket 404,
// anything else 500.
func writeDeskError(w http.ResponseWriter, r *http.Request, ticketID int64, err error) {
	switch {
	case errors.Is(err, desk.ErrInvalid):
		writeInvalid(w, r, http.StatusUnprocessableEntity, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("ticket %d not found", ticketID))
	default:
		writeInternalError(w, r, err)
	}
}

// writeInvalid answers a caller's mistake (a *desk.ValidationError) with
// its sentence.
func writeInvalid(w http.ResponseWriter, r *http.Request, status int, err error) {
	var v *desk.ValidationError
	if !errors.As(err, &v) {
		writeInternalError(w, r, err) // ErrInvalid without its sentence: a bug of ours
		return
	}
	resp := errorResponse{Error: v.Message, Field: v.Field}
	if all := desk.FieldErrors(err); len(all) > 1 {
		for _, f := range all {
			resp.Errors = append(resp.Errors, fieldError{Error: f.Message, Field: f.Field})
		}
	}
	writeJSON(w, r, status, resp)
}

// pathID parses the positive integer path value name; on failure it answers
// 400 and returns false. what names the resource in the message ("ticket").
func pathID(w http.ResponseWriter, r *http.Request, name, what string) (int64, bool) {
	s := r.PathValue(name)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("%s id must be a positive integer, not %q", what, s))
		return 0, false
	}
	return id, true
}

// errNotObject is a body of JSON null.
var errNotObject = errors.New("request body is null")

// decodeJSON reads the request body, a single JSON object, into dst (a
// pointer to a struct). Unknown fields, trailing data, a body that is not
// application/json or larger than maxBodyBytes are refused; on failure it
// answers and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		got := "no Content-Type"
		if ct != "" {
			got = fmt.Sprintf("Content-Type %q", ct)
		}
		writeError(w, r, http.StatusUnsupportedMediaType, "request body must be JSON: send Content-Type: application/json (got "+got+")")
		return false
	}
	raw, err := io.ReadAll(r.Body)
	if err == nil && bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		err = errNotObject // Unmarshal takes null as "no change" and would leave dst empty
	}
	if err == nil {
		err = decodeStrict(raw, dst)
	}
	if err == nil {
		return true
	}
	var unknown *unknownFieldError
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		timeErr   *time.ParseError
		netErr    net.Error
	)
	status, msg := http.StatusBadRequest, ""
	switch {
	case errors.As(err, &maxErr):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes (1 MiB)", maxBodyBytes)
	case errors.As(err, &netErr) && netErr.Timeout():
		status, msg = http.StatusRequestTimeout, "request body stalled: nothing of it arrived for a while, so it was not read; send it again"
	case errors.Is(err, errNotObject):
		msg = "request body must be a JSON object"
	case errors.As(err, &timeErr):
		msg = fmt.Sprintf("a time in the request body is not an RFC 3339 time such as 2027-03-31T00:00:00Z: %q", timeErr.Value)
	case errors.Is(err, io.EOF):
		msg = "request body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "request body is not valid JSON: it ends too early"
	case errors.As(err, &syntaxErr):
		msg = fmt.Sprintf("request body is not valid JSON: %s (at byte %d)", strings.TrimPrefix(syntaxErr.Error(), "json: "), syntaxErr.Offset)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		msg = "request body must be a JSON object"
	case errors.As(err, &typeErr):
		msg = fmt.Sprintf("field %q must be %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &unknown):
		msg = fmt.Sprintf("unknown field %s in request body; this request accepts %s", strconv.Quote(unknown.Field), knownFields(dst))
	case errors.Is(err, errTrailing):
		msg = "request body must hold exactly one JSON object"
	default:
		msg = "request body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	writeError(w, r, status, msg)
	return false
}

// errTrailing is a body with more after its JSON object.
var errTrailing = errors.New("trailing data")

// unknownFieldError is a body's field that dst has no place for.
type unknownFieldError struct{ Field string }

func (e *unknownFieldError) Error() string { return "unknown field " + strconv.Quote(e.Field) }

// decodeStrict decodes exactly one JSON value from raw into dst, and
// refuses a field of the body that the struct dst points to does not name
// (matched as encoding/json matches them: case-insensitively).
func decodeStrict(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, extra := dec.Token(); extra != io.EOF {
		return errTrailing
	}
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]json.RawMessage
	if t.Kind() != reflect.Struct || json.Unmarshal(raw, &fields) != nil {
		return nil // not a struct, or not an object (null): nothing to check
	}
	known := fieldNames(dst)
	var unknown []string
	for name := range fields {
		if !slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return &unknownFieldError{Field: unknown[0]}
	}
	return nil
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "an object"
	}
}

// knownFields lists the JSON field names of the struct dst points to.
func knownFields(dst any) string {
	var names []string
	for _, n := range fieldNames(dst) {
		names = append(names, strconv.Quote(n))
	}
	if len(names) == 0 {
		return "no fields"
	}
	return strings.Join(names, ", ")
}

// fieldNames are the JSON field names of the struct dst points to.
func fieldNames(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// utc is t as the API shows times: UTC, at the millisecond precision the
// store keeps, so an answer and a later read of the same row agree.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// timeOrNil is utc(t), or nil (JSON null) when t is unknown.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = utc(t)
	if t.After(lastJSONTime) {
		// JSON (RFC 3339) has four-digit years: a later time (an API key's
		// expiry set before expiries were bounded) would fail the whole
		// answer.
		t = lastJSONTime
	}
	return &t
}

// lastJSONTime is the latest time an RFC 3339 answer can carry.
var lastJSONTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
