// Package docs holds hybridscore's own documentation, as Markdown beside
// this file:
//
//   - contract.md: subjects, streams, messages, headers, configuration,
//     endpoints, metrics, programs and guarantees;
//   - scoring.md: how a job is scored, with worked examples;
//   - operations.md: health, alerts, incidents, tuning, upgrades, recovery;
//   - architecture.md: the packages and a job's walk through them.
//
// The package has no code. Its test checks the repository's documentation:
// every relative Markdown link, and every mention of a file under docs/ with
// an anchor, resolves to a file (and heading) of the repository, and no file
// cites a specification kept outside the repository.
package docs
