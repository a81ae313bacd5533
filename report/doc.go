// Package report renders what h2scope found: connection tables, and (with
// the analyzers) the report model as terminal tables, JSON, HTML and
// Markdown.
package report
