package console

import (
	"net/http"
	"sync"
	"time"
)

// outcomes keeps what each action did for a while, so that an action
// answers with a redirect to a page that shows its outcome (POST, then
// GET): reloading that page shows the outcome again instead of replaying a
// set of dead letters a second time.
type outcomes struct {
	mu sync.Mutex
	m  map[string]outcome
}

type outcome struct {
	msg    message
	status int
	at     time.Time
}

// outcomeTTL is how long an outcome's page stays; maxOutcomes bounds what
// is kept.
const (
	outcomeTTL  = 10 * time.Minute
	maxOutcomes = 1000
)

// put keeps m, shown with HTTP status code, and returns the id of its page.
func (o *outcomes) put(m message, status int) string {
	id := randomToken()
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]outcome{}
	}
	for k, v := range o.m {
		if now.Sub(v.at) > outcomeTTL || len(o.m) >= maxOutcomes {
			delete(o.m, k)
		}
	}
	o.m[id] = outcome{msg: m, status: status, at: now}
	return id
}

func (o *outcomes) get(id string) (outcome, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[id]
	if !ok || time.Since(v.at) > outcomeTTL {
		return outcome{}, false
	}
	return v, true
}

// done ends a successful action: the browser is sent to the page of its
// outcome.
func (c *Console) done(w http.ResponseWriter, r *http.Request, m message) {
	http.Redirect(w, r, "/done/"+c.outcomes.put(m, http.StatusOK), http.StatusSeeOther)
}

// failed ends an action that failed, perhaps part-way (a set replay that
// stopped after some letters), the same way: its page says what happened
// with status code, and reloading it does not send the form again.
func (c *Console) failed(w http.ResponseWriter, r *http.Request, status int, m message) {
	http.Redirect(w, r, "/done/"+c.outcomes.put(m, status), http.StatusSeeOther)
}

func (c *Console) outcomePage(w http.ResponseWriter, r *http.Request) {
	o, ok := c.outcomes.get(r.PathValue("id"))
	if !ok {
		c.page(w, r, http.StatusNotFound, "message.html", message{Title: "Done",
			Text: "This outcome is no longer kept (they are kept 10 minutes, in the console process). The dead letters and jobs show what happened.", Back: "/deadletters"})
		return
	}
	c.page(w, r, o.status, "message.html", o.msg)
}
