package smoke

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Check is one row of a Report.
type Check struct {
	Name    string        `json:"name"`
	Result  Outcome       `json:"result"`
	Detail  string        `json:"detail"`
	JobID   string        `json:"job_id,omitempty"`
	Elapsed time.Duration `json:"-"`
	// Answer is the job's result as the worker published it.
	Answer json.RawMessage `json:"answer,omitempty"`
}

// MarshalJSON adds the elapsed time in milliseconds.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	return json.Marshal(struct {
		plain
		ElapsedMS float64 `json:"elapsed_ms"`
	}{plain(c), float64(c.Elapsed.Microseconds()) / 1000})
}

// UnmarshalJSON reads what MarshalJSON wrote, elapsed time included.
func (c *Check) UnmarshalJSON(b []byte) error {
	type plain Check
	var v struct {
		plain
		ElapsedMS float64 `json:"elapsed_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Check(v.plain)
	c.Elapsed = time.Duration(math.Round(v.ElapsedMS*1000)) * time.Microsecond
	return nil
}

// Report is the outcome of a Run.
type Report struct {
	RunID   string    `json:"run_id"`
	Lane    string    `json:"lane"`
	Subject string    `json:"results_subject"`
	Started time.Time `json:"started"`
	// OK is true when no check failed (skipped ones do not count).
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Count returns how many checks ended with o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, c := range r.Checks {
		if c.Result == o {
			n++
		}
	}
	return n
}

// Check returns the row called name, or a zero Check.
func (r *Report) Check(name string) Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

// Err is nil when no check failed, else an error naming the failed ones.
func (r *Report) Err() error {
	var failed []string
	for _, c := range r.Checks {
		if c.Result == Fail {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("smoke: %d of %d checks failed: %s", len(failed), len(r.Checks), strings.Join(failed, ", "))
}

// WriteText prints the report as a table, one row per check, and a
// closing count. Plain text: no colour or escape codes, so it reads the same
// in a terminal, a file and a CI log.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "smoke run %s, lane %s, results on %s\n\n", r.RunID, r.Lane, r.Subject)
	fmt.Fprintln(tw, "CHECK\tRESULT\tTIME\tDETAIL")
	for _, c := range r.Checks {
		took := "-"
		if c.Elapsed > 0 {
			took = c.Elapsed.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, strings.ToUpper(string(c.Result)), took, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "OK"
	if !r.OK {
		verdict = "FAILED"
	}
	// "pass"/"fail", not "passed"/"failed": a CI log reader must not take
	// this line for a test runner's closing line.
	_, err := fmt.Fprintf(w, "\nsmoke %s: %d pass, %d fail, %d skip\n", verdict, r.Count(Pass), r.Count(Fail), r.Count(Skip))
	return err
}
