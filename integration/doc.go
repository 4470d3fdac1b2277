// Package integration holds hybridscore's container test suite: the worker,
// NATS and Redis run as containers (testcontainers-go) and the tests break
// them on purpose (Redis stopped, NATS restarted, a worker killed, a cluster
// node lost) while a batch of jobs is being scored, then check that every job
// ends with exactly one stored result.
//
// Every test file carries the build tag "containers", so plain `go test ./...`
// compiles nothing here. Run the suite with
//
//	make images && go test -tags containers -count=1 ./integration/
//
// See README.md in this directory for the environment variables.
package integration
