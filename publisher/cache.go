package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hybridscore/hybridscore/internal/server"
)

// workerURL is how every publisher command reaches a worker's HTTP
// endpoints: one flag, whose default is the worker's own HTTP_ADDR (:8053).
// --url (cache) and HYBRIDSCORE_ADMIN_URL are the names it had before;
// they still work and are not shown.
type workerURL struct {
	WorkerURL string `name:"worker-url" aliases:"url" env:"HYBRIDSCORE_WORKER_URL,HYBRIDSCORE_ADMIN_URL" default:"http://127.0.0.1:8053" help:"A worker's HTTP address (its HTTP_ADDR)."`
}

// adminFlags reach one worker's admin endpoints.
type adminFlags struct {
	workerURL
	Token string `name:"token" env:"ADMIN_TOKEN" help:"The worker's ADMIN_TOKEN (bearer token); the worker refuses its admin endpoints unless started with one."`
}

func (a adminFlags) do(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.WorkerURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if a.Token == "" {
		return nil, fmt.Errorf("give --token or ADMIN_TOKEN: the admin endpoints need the worker's token")
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

type cacheCmd struct {
	Report cacheReportCmd `cmd:"" help:"Hit rate by tier, age of entries at hit and at eviction, reuse, expired-unused entries, and the size/TTL recommendation."`
	Export cacheExportCmd `cmd:"" help:"Write the texts in a worker's cache as a warm file (SEMANTIC_CACHE_WARM_FILE, or cache warm)."`
	Warm   cacheWarmCmd   `cmd:"" help:"Warm a worker's cache from a file (an export, a JSON array of texts, or one text per line)."`
}

type cacheReportCmd struct {
	adminFlags
	JSON bool `name:"json" help:"Print the report as JSON."`
}

func (c *cacheReportCmd) Run(ctx context.Context) error {
	path := "/admin/cache/report?format=text"
	if c.JSON {
		path = "/admin/cache/report"
	}
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}

type cacheExportCmd struct {
	adminFlags
	Out string `short:"o" required:"" help:"The warm file to write; - for standard output (from a container: docker-compose run -T … > warm.json)."`
}

func (c *cacheExportCmd) Run(ctx context.Context) error {
	b, err := c.do(ctx, http.MethodGet, "/admin/cache/export", nil)
	if err != nil {
		return err
	}
	n := bytes.Count(b, []byte(`"text":`))
	if c.Out == "-" {
		if _, err := os.Stdout.Write(b); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "exported %d texts\n", n)
		return nil
	}
	if err := os.WriteFile(c.Out, b, 0o600); err != nil {
		return err
	}
	fmt.Printf("exported %d texts to %s\n", n, c.Out)
	return nil
}

type cacheWarmCmd struct {
	adminFlags
	File string `arg:"" type:"existingfile" help:"An export, a JSON array of texts, or one text per line."`
}

func (c *cacheWarmCmd) Run(ctx context.Context) error {
	qs, err := server.ReadWarmFile(c.File)
	if err != nil {
		return err
	}
	// The endpoint takes at most server.MaxWarmTexts texts a request.
	cached := 0
	for len(qs) > 0 {
		n := min(len(qs), server.MaxWarmTexts/2)
		body, _ := json.Marshal(qs[:n])
		out, err := c.do(ctx, http.MethodPost, "/admin/cache/warm", bytes.NewReader(body))
		if err != nil {
			return err
		}
		var r struct {
			Cached int    `json:"cached"`
			Errors string `json:"errors"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("warm answered %q: %w", out, err)
		}
		if r.Errors != "" {
			fmt.Fprintln(os.Stderr, "some texts were not analysed:", r.Errors)
		}
		cached += r.Cached
		qs = qs[n:]
	}
	fmt.Printf("warmed: %d texts cached\n", cached)
	return nil
}
