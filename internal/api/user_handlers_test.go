package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type apiUser struct {
	ID           int64   `json:"id"`
	Email        string  `json:"email"`
	Role         string  `json:"role"`
	State        string  `json:"state"`
	LastSignInAt *string `json:"last_sign_in_at"`
	DisabledAt   *string `json:"disabled_at"`
}

func TestUsersAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		// An agent sees whom tickets can be assigned to, without state or sign-ins.
		var assignable struct{ Users []map[string]any }
		f.do(t, "GET", "/api/v1/users", "").decode(t, http.StatusOK, &assignable)
		if len(assignable.Users) != 2 || assignable.Users[0]["state"] != nil || assignable.Users[0]["last_sign_in_at"] != nil {
			t.Fatalf("an agent's GET /users = %+v", assignable.Users)
		}
		f.do(t, "POST", "/api/v1/users", `{"email":"x@example.com","setup":"invite"}`).wantError(t, http.StatusForbidden, "only admins")

		var list struct{ Users []apiUser }
		f.do(t, "GET", "/api/v1/users", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Users) != 2 || list.Users[0].Email != "admin@example.com" || list.Users[1].State != "active" || list.Users[1].LastSignInAt != nil {
			t.Fatalf("users = %+v", list.Users)
		}

		var created struct {
			User       apiUser
			Password   string
			InvitePath string `json:"invite_path"`
			InviteURL  string `json:"invite_url"`
		}
		f.do(t, "POST", "/api/v1/users", `{"email":"Ann@Example.com","name":"Ann","setup":"invite"}`, asAdmin(f)).decode(t, http.StatusCreated, &created)
		if created.User.Email != "ann@example.com" || created.User.Role != "agent" || created.User.State != "invited" ||
			!strings.HasPrefix(created.InvitePath, "/invite/") || created.Password != "" || created.InviteURL != "" {
			t.Fatalf("created = %+v", created)
		}
		created.InvitePath = ""
		f.do(t, "POST", "/api/v1/users", `{"email":"bob@example.com","role":"admin","setup":"password"}`, asAdmin(f)).decode(t, http.StatusCreated, &created)
		if created.User.Role != "admin" || created.User.State != "active" || len(created.Password) < 8 || created.InvitePath != "" {
			t.Fatalf("created = %+v", created)
		}
		f.do(t, "POST", "/api/v1/users", `{"email":"ann@example.com","setup":"invite"}`, asAdmin(f)).wantError(t, http.StatusConflict, "already exists")
		f.do(t, "POST", "/api/v1/users", `{"email":"c@example.com","role":"owner","setup":"invite"}`, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, "admin or agent")
		f.do(t, "POST", "/api/v1/users", `{"email":"c@example.com","setup":"magic"}`, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, `setup must be "invite" (an invitation link) or "password" (a generated password), not "magic"`)
		f.do(t, "POST", "/api/v1/users", `{"email":"c@example.com","setup":"invite","password":"x"}`, asAdmin(f)).wantError(t, http.StatusBadRequest, `unknown field "password"`)

		// Disabled: the agent's key is refused on the very next request.
		agent := "/api/v1/users/" + strconv.FormatInt(f.user.ID, 10)
		var u apiUser
		f.do(t, "PATCH", agent, `{"disabled":true}`, asAdmin(f)).decode(t, http.StatusOK, &u)
		if u.State != "disabled" || u.DisabledAt == nil {
			t.Fatalf("disabled = %+v", u)
		}
		f.do(t, "GET", "/api/v1/me", "").wantError(t, http.StatusUnauthorized, "invalid API key")
		f.do(t, "PATCH", agent, `{"disabled":false,"role":"admin"}`, asAdmin(f)).decode(t, http.StatusOK, &u)
		if u.State != "active" || u.Role != "admin" {
			t.Fatalf("enabled = %+v", u)
		}
		var me struct{ Role string }
		f.do(t, "GET", "/api/v1/me", "").decode(t, http.StatusOK, &me)
		if me.Role != "admin" {
			t.Errorf("me = %+v", me)
		}

		// Never without an active admin; all of a change or nothing.
		var admins []int64
		f.do(t, "GET", "/api/v1/users", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		for _, u := range list.Users {
			if u.Role == "admin" {
				admins = append(admins, u.ID)
			}
		}
		self := list.Users[0].ID // admin@example.com
		for _, id := range admins {
			if id != self {
				f.do(t, "PATCH", "/api/v1/users/"+strconv.FormatInt(id, 10), `{"role":"agent"}`, asAdmin(f)).decode(t, http.StatusOK, &u)
			}
		}
		f.do(t, "PATCH", "/api/v1/users/"+strconv.FormatInt(self, 10), `{"role":"agent"}`, asAdmin(f)).
			wantError(t, http.StatusConflict, "admin@example.com is the last active admin")
		f.do(t, "PATCH", "/api/v1/users/"+strconv.FormatInt(self, 10), `{"disabled":true}`, asAdmin(f)).
			wantError(t, http.StatusUnprocessableEntity, "cannot disable your own account")
		f.do(t, "PATCH", agent, `{"role":"admin","disabled":true}`, asAdmin(f)).decode(t, http.StatusOK, &u)
		f.do(t, "PATCH", agent, `{"role":"agent","disabled":false}`, asAdmin(f)).decode(t, http.StatusOK, &u)
		f.do(t, "PATCH", agent, `{"role":"owner","disabled":true}`, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, "admin or agent")
		f.do(t, "GET", "/api/v1/me", "").decode(t, http.StatusOK, &me) // the refused change disabled nobody
		f.do(t, "PATCH", agent, `{}`, asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, "nothing to change")
		f.do(t, "PATCH", "/api/v1/users/9999", `{"disabled":true}`, asAdmin(f)).wantError(t, http.StatusNotFound, "user not found")
	})
}
