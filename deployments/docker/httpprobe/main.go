// Command httpprobe is the container health check of the images built FROM
// scratch (nats, and the worker image in its langextract-server mode), which
// have no shell, curl or wget.
//
//	httpprobe [-timeout 3s] URL...
//
// It GETs each URL in turn and exits 0 when every answer is 2xx, 1 when one is
// not or the request fails, and 2 on a usage error. The worker's own health
// check is `worker health --worker-url ...`, which also reads the health JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("httpprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "time allowed for each request")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: httpprobe [-timeout 3s] URL...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	for _, url := range fs.Args() {
		if err := probe(context.Background(), client, url); err != nil {
			fmt.Fprintf(stderr, "httpprobe: %v\n", err)
			return 1
		}
	}
	return 0
}

// probe GETs url and returns an error unless the status is 2xx.
func probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read a bounded amount so the server sees a complete exchange.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
