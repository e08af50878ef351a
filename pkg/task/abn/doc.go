// Package abn is the `abn` task: it reads an application's business metrics
// from the A/B/n service (GET /v1/summary) and stores, for every version
// under test and every metric named in the spec:
//
//	abn/users               users exposed to the version
//	abn/<m>-per-user        the metric's sum per exposed user (0 for users without it),
//	                        with its sample (users are the independent unit)
//	abn/<m>-conversion      the share of exposed users with the metric, with its sample
//	abn/<m>-users           users with the metric
//	abn/<m>-count, -sum     over writes (transactions)
//	abn/<m>-mean, -stddev, -min, -max
//
// The summaries hold everything the service recorded for the application
// (users exposed before the experiment started too, and earlier users of a
// version name used again), so each loop's samples hold every earlier
// loop's users: they are marked cumulative, and `assess` compares per-user
// means by their ratio and lets each loop's look replace the sequential
// evidence rather than add to it. Start an A/B test on a fresh application
// or fresh version names to judge only its own users.
//
// Versions are read by name: spec.versions must name the application's
// versions as its release does. A version the service has not seen has no
// users; its per-user and conversion metrics are then unavailable (with the
// reason), which a later comparison reports as missing evidence.
//
// The service unreachable, a status other than 200 or a response that is
// not a summary fails the task, naming the endpoint.
package abn
