<?php
/*
 * lib.php - what every dashboard page shares: the PDO connection (SQLite file
 * or MySQL/MariaDB, chosen by configuration), HTML escaping and the page
 * frame. The tables are the ones bin/changelog-replay writes
 * (docs/sql-schema.md); the dashboard only reads them.
 *
 * Configuration (environment, so the same files serve any target):
 *   CHANGELOG_DSN       PDO DSN, e.g. sqlite:/srv/changelog/replay.db or
 *                       mysql:unix_socket=/run/mysqld/mysqld.sock;dbname=changelog
 *   CHANGELOG_DB_USER   user for MySQL (default none)
 *   CHANGELOG_DB_PASSWORD  password for MySQL (default none)
 */

declare(strict_types=1);

/*
 * The characters that must not reach a page or a terminal as they are (the
 * same set as cl_display_hazard in core/cl.h): C0 controls but tab and line
 * breaks, DEL, C1 controls, the bidi marks, embeddings, overrides and
 * isolates, and the line / paragraph separators.
 */
const HAZARDS = '/[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}'
              . '\x{2028}-\x{202e}\x{2066}-\x{2069}]/u';

/* Code point of one UTF-8 character (valid UTF-8: the database holds only that). */
function code_point(string $c): int
{
    $b = array_values(unpack('C*', $c));
    return match (count($b)) {
        1 => $b[0],
        2 => (($b[0] & 0x1f) << 6) | ($b[1] & 0x3f),
        3 => (($b[0] & 0x0f) << 12) | (($b[1] & 0x3f) << 6) | ($b[2] & 0x3f),
        default => (($b[0] & 0x07) << 18) | (($b[1] & 0x3f) << 12) | (($b[2] & 0x3f) << 6)
                   | ($b[3] & 0x3f),
    };
}

/* $s with every HAZARDS character written as the visible text $fmt
 * (sprintf with the code point), e.g. "<U+202E>". */
function show_hazards(string $s, string $fmt = '<U+%04X>'): string
{
    return preg_replace_callback(HAZARDS, fn($m) => sprintf($fmt, code_point($m[0])), $s)
        ?? '';
}

/*
 * Everything user-written goes through here before it reaches HTML: HTML
 * escaping, then the hazards shown as the text "<U+202E>" (htmlspecialchars
 * leaves a right-to-left override in place, which would reorder the page).
 */
function h(?string $s): string
{
    return show_hazards(htmlspecialchars($s ?? '', ENT_QUOTES | ENT_SUBSTITUTE | ENT_HTML5,
                                         'UTF-8'), '&lt;U+%04X&gt;');
}

function db(): PDO
{
    static $pdo = null;
    if ($pdo !== null) {
        return $pdo;
    }
    $dsn = getenv('CHANGELOG_DSN');
    if ($dsn === false || $dsn === '') {
        throw new RuntimeException('CHANGELOG_DSN is not set (e.g. sqlite:/path/replay.db)');
    }
    $user = getenv('CHANGELOG_DB_USER') ?: null;
    $pass = getenv('CHANGELOG_DB_PASSWORD') ?: null;
    $opts = [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
        PDO::ATTR_EMULATE_PREPARES => false,
    ];
    if (str_starts_with($dsn, 'sqlite:')) {
        // the replay writes; the dashboard only reads
        $opts[PDO::SQLITE_ATTR_OPEN_FLAGS] = PDO::SQLITE_OPEN_READONLY;
    }
    if (str_starts_with($dsn, 'mysql:') && !str_contains($dsn, 'charset=')) {
        $dsn .= ';charset=utf8mb4';
    }
    $pdo = new PDO($dsn, $user, $pass, $opts);
    if ($pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'sqlite') {
        $pdo->exec('PRAGMA busy_timeout = 5000');
    }
    return $pdo;
}

/* Rows of a prepared statement. */
function rows(string $sql, array $params = []): array
{
    $st = db()->prepare($sql);
    $st->execute($params);
    return $st->fetchAll();
}

const STATUSES = ['open', 'resolved', 'cancelled', 'reopened'];
const KINDS = ['fix', 'change', 'feature'];

/* The replay position, shown in every page footer. */
function replay_position(): string
{
    $r = rows('SELECT epoch, last_seq, updated FROM replay_state WHERE id = 1');
    if (!$r) {
        return 'not replayed yet';
    }
    return sprintf('log %s at seq %d (replayed %s)', $r[0]['epoch'], $r[0]['last_seq'],
                   $r[0]['updated']);
}

/* Phones lay the page out at their own width instead of a zoomed-out desktop. */
const VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">';

function page_start(string $title): void
{
    header('Content-Type: text/html; charset=utf-8');
    header("Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'");
    echo "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
    echo VIEWPORT, "\n";
    echo '<title>', h($title), "</title>\n";
    echo "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}"
        . "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
        . "padding:.3em;text-align:left;vertical-align:top}.st{font-weight:bold}"
        . ".comment{border-left:3px solid #ccd;padding:.2em .6em;margin:.4em 0}"
        . ".meta{color:#666;font-size:.9em}pre{white-space:pre-wrap;overflow-wrap:anywhere}"
        // a phone: list rows become cards, threads stop indenting past a little
        . "@media (max-width:40em){table:has(tr.entry),table:has(tr.entry) tbody,tr.entry"
        . "{display:block}table:has(tr.entry) tr:has(th){display:none}tr.entry{border-bottom:1px solid #ddd;padding:.3em 0}"
        . "tr.entry td{display:inline;border:0;padding:0 .3em 0 0}"
        . "tr.entry td:nth-child(2){display:block;font-weight:bold}"
        . ".comment[data-depth=\"1\"]{margin-left:1em!important}"
        . ".comment:not([data-depth=\"0\"]):not([data-depth=\"1\"]){margin-left:2em!important}"
        . "table{table-layout:fixed}td,th{overflow-wrap:anywhere}"
        . "h1{font-size:1.4em;overflow-wrap:anywhere}}</style>\n";
    echo "</head><body>\n";
}

function page_end(): void
{
    echo '<footer class="meta"><hr>', h(replay_position()), "</footer>\n</body></html>\n";
}

/* A failure as a plain page with a status code; details stay in the log. */
function fail_page(int $code, string $message): void
{
    http_response_code($code);
    header('Content-Type: text/html; charset=utf-8');
    echo "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>",
        h((string)$code), "</title>", VIEWPORT, "</head><body><h1>", h($message), "</h1></body></html>\n";
}
