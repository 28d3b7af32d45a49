package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// Users, for admins: list, add (with a generated password or an invitation
// link, answered once), and change role or disable/enable. Every change is
// auth.Service's, as for Admin -> Users and "postdesk user".

// adminUserResponse is a user as admins see them.
type adminUserResponse struct {
	ID           int64      `json:"id"`
	Email        string     `json:"email"`
	Name         string     `json:"name"`
	Role         string     `json:"role"`
	State        string     `json:"state"` // active, disabled, invited
	TimeZone     string     `json:"time_zone"`
	CreatedAt    time.Time  `json:"created_at"`
	LastSignInAt *time.Time `json:"last_sign_in_at"`
	DisabledAt   *time.Time `json:"disabled_at"`
}

func toAdminUser(u store.User) adminUserResponse {
	return adminUserResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, State: u.State(), TimeZone: u.TimeZone,
		CreatedAt: utc(u.CreatedAt), LastSignInAt: timeOrNil(u.LastSignInAt), DisabledAt: timeOrNil(u.DisabledAt)}
}

// usersAdminOnly lets only admins through.
func (h *handler) usersAdminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r).Role != store.RoleAdmin {
			writeError(w, r, http.StatusForbidden, "only admins can manage users")
			return
		}
		next(w, r)
	}
}

// getUsers answers admins every user, with state and last sign-in, and
// other users the people tickets can be assigned to (everyone not
// disabled): their ids are what "assignee_id" takes.
func (h *handler) getUsers(w http.ResponseWriter, r *http.Request) {
	if currentUser(r).Role != store.RoleAdmin {
		h.getAssignableUsers(w, r)
		return
	}
	h.getAllUsers(w, r)
}

// getAssignableUsers lists the users who are not disabled.
func (h *handler) getAssignableUsers(w http.ResponseWriter, r *http.Request) {
	list, err := h.desk.AssignableUsers(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := make([]userResponse, 0, len(list))
	for _, u := range list {
		out = append(out, userResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role})
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"users": out})
}

// getAllUsers lists every user by email.
func (h *handler) getAllUsers(w http.ResponseWriter, r *http.Request) {
	list, err := h.db.Users(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := make([]adminUserResponse, 0, len(list))
	for _, u := range list {
		out = append(out, toAdminUser(u))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Setup string `json:"setup"` // "invite" or "password"
}

// createdUserResponse answers a new user once with how they get in.
type createdUserResponse struct {
	User            adminUserResponse `json:"user"`
	Password        string            `json:"password,omitempty"`
	InvitePath      string            `json:"invite_path,omitempty"`
	InviteURL       string            `json:"invite_url,omitempty"`
	InviteExpiresAt *time.Time        `json:"invite_expires_at,omitempty"`
}

// createUser adds a user.
func (h *handler) createUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Role == "" {
		req.Role = store.RoleAgent
	}
	if req.Setup != auth.SetupPassword && req.Setup != auth.SetupInvite {
		// The API's words: the web's sentence speaks of its radio buttons.
		writeJSON(w, r, http.StatusUnprocessableEntity, errorResponse{Field: "setup",
			Error: fmt.Sprintf("setup must be %q (an invitation link) or %q (a generated password), not %q", auth.SetupInvite, auth.SetupPassword, req.Setup)})
		return
	}
	u, creds, err := h.auth.AddUser(r.Context(), currentUser(r), auth.NewUser{Email: req.Email, Name: req.Name, Role: req.Role, Setup: req.Setup})
	if err != nil {
		writeUserError(w, r, err)
		return
	}
	res := createdUserResponse{User: toAdminUser(u), Password: creds.Password}
	if creds.InviteToken != "" {
		res.InvitePath = "/invite/" + creds.InviteToken
		if h.baseURL != "" {
			res.InviteURL = strings.TrimSuffix(h.baseURL, "/") + res.InvitePath
		}
		res.InviteExpiresAt = timeOrNil(creds.InviteExpires)
	}
	writeJSON(w, r, http.StatusCreated, res)
}

type updateUserRequest struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

// updateUser changes a user's role and/or disables or enables them. A
// disabled user's sessions end and their API keys are refused from the
// next request on.
func (h *handler) updateUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "userID", "user")
	if !ok {
		return
	}
	var req updateUserRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Role == nil && req.Disabled == nil {
		writeJSON(w, r, http.StatusUnprocessableEntity, errorResponse{Error: "nothing to change: send role and/or disabled"})
		return
	}
	u, err := h.auth.ChangeUser(r.Context(), currentUser(r), id, auth.UserChange{Role: req.Role, Disabled: req.Disabled})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, r, http.StatusNotFound, "user not found")
			return
		}
		writeUserError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, toAdminUser(u))
}

// writeUserError answers a refusal of auth's user service: 409 for a
// conflict with existing state (email taken, last admin), 403 for a
// non-admin, 422 for other input, with the field; else 500.
func writeUserError(w http.ResponseWriter, r *http.Request, err error) {
	var v *auth.ValidationError
	if !errors.As(err, &v) {
		writeInternalError(w, r, err)
		return
	}
	status := http.StatusUnprocessableEntity
	switch {
	case errors.Is(err, auth.ErrEmailTaken), errors.Is(err, auth.ErrLastAdmin):
		status = http.StatusConflict
	case errors.Is(err, auth.ErrNotAdmin):
		status = http.StatusForbidden
	}
	writeJSON(w, r, status, errorResponse{Error: v.Message, Field: v.Field})
}
