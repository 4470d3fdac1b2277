package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sessionCookie names the signed-in session; its value is a random id that
// means something only to this process.
const sessionCookie = "hybridscore_console"

// sessionTTL bounds a session's life.
const sessionTTL = 12 * time.Hour

type session struct {
	csrf    string
	expires time.Time
}

// sessions are the signed-in operators' sessions, in memory: a restart
// signs everyone out.
type sessions struct {
	mu       sync.Mutex
	byID     map[string]session
	failures *rate.Limiter
}

func newSessions() *sessions {
	// Wrong tokens are slowed to five attempts a second, as the worker's
	// admin endpoints do.
	return &sessions{byID: map[string]session{}, failures: rate.NewLimiter(5, 10)}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create() (id string, sess session) {
	id, sess = randomToken(), session{csrf: randomToken(), expires: time.Now().Add(sessionTTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID {
		if time.Now().After(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = sess
	return id, sess
}

// get returns the request's live session.
func (s *sessions) get(r *http.Request) (id string, sess session, ok bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok = s.byID[c.Value]
	if !ok || time.Now().After(sess.expires) {
		delete(s.byID, c.Value)
		return "", session{}, false
	}
	return c.Value, sess, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// signIn checks the admin token from the sign-in form and, when it is
// right, opens a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Token == "" {
		c.page(w, r, http.StatusForbidden, "message.html", message{Title: "Sign-in disabled",
			Text: "This console was started without an admin token (ADMIN_TOKEN): it is read-only."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token := r.PostFormValue("token")
	if token == "" || !equal(token, c.cfg.Token) {
		if !c.sessions.failures.Allow() {
			w.Header().Set("Retry-After", "1")
			c.page(w, r, http.StatusTooManyRequests, "message.html", message{Title: "Too many attempts", Text: "Too many failed sign-ins: wait a second, then try again.", Back: "/login"})
			return
		}
		c.log("sign-in refused", "remote", r.RemoteAddr)
		c.page(w, r, http.StatusUnauthorized, "login.html", message{Title: "Sign in", Text: "Wrong admin token."})
		return
	}
	id, _ := c.sessions.create()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	c.log("signed in", "remote", r.RemoteAddr)
	next := r.PostFormValue("next")
	if !localPath(next) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// localPath tells whether p is a path of this console to return to after
// signing in: never another site ("//host", "/\host", a scheme).
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n") && !strings.HasPrefix(p, "/login")
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if id, _, ok := c.sessions.get(r); ok {
		c.sessions.delete(id)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// mutation guards a handler that changes something: it needs a signed-in
// session and that session's CSRF token in the form. Anything else is
// refused with 403 and changes nothing.
func (c *Console) mutation(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, sess, ok := c.sessions.get(r)
		if !ok {
			c.log("mutation refused: not signed in", "path", r.URL.Path, "remote", r.RemoteAddr)
			c.page(w, r, http.StatusForbidden, "message.html", message{Title: "Refused", Text: "Sign in with the admin token to change anything.", SignIn: true})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !equal(r.PostFormValue("csrf"), sess.csrf) {
			c.log("mutation refused: bad CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
			// Reloading would post the same stale form again: the way out
			// is the page the form came from, which holds a fresh one.
			back := "/"
			if next := r.FormValue("next"); localPath(next) {
				back = next
			}
			c.page(w, r, http.StatusForbidden, "message.html", message{Title: "Refused", Back: back,
				Text: "The form is stale (signed out, or signed in again since it was shown) or did not come from this console: nothing was changed. Continue to the page it came from, which shows a fresh form, and try again."})
			return
		}
		h(w, r)
	}
}

// signedIn guards a read that needs a session (a worker's cache report).
func (c *Console) signedIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := c.sessions.get(r); !ok {
			c.page(w, r, http.StatusForbidden, "message.html", message{Title: "Refused", Text: "Sign in with the admin token to see this.", SignIn: true})
			return
		}
		h(w, r)
	}
}
