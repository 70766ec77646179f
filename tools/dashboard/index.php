<?php
/*
 * index.php - the list of changelog entries, newest first, with status and
 * kind filters, comment counts and paging by id (?before=ID). It reads the
 * tables of bin/changelog-replay through lib.php; the list uses the
 * entries_status / entries_kind indexes.
 */

declare(strict_types=1);
require __DIR__ . '/lib.php';

const PAGE = 50;

try {
    $status = $_GET['status'] ?? '';
    $kind = $_GET['kind'] ?? '';
    $before = $_GET['before'] ?? '';
    if (!is_string($status) || ($status !== '' && !in_array($status, STATUSES, true)) ||
        !is_string($kind) || ($kind !== '' && !in_array($kind, KINDS, true)) ||
        !is_string($before) || ($before !== '' && !ctype_digit($before))) {
        fail_page(400, 'Bad filter: status must be one of ' . implode(', ', STATUSES) .
                  '; kind one of ' . implode(', ', KINDS) . '; before an entry id.');
        exit;
    }
    $where = [];
    $params = [];
    if ($status !== '') {
        $where[] = 'status = ?';
        $params[] = $status;
    }
    if ($kind !== '') {
        $where[] = 'kind = ?';
        $params[] = $kind;
    }
    if ($before !== '') {
        $where[] = 'id < ?';
        $params[] = (int)$before;
    }
    $sql = 'SELECT id, title, kind, status, author, created, updated, version, comment_count,'
         . ' last_activity FROM entries'
         . ($where ? ' WHERE ' . implode(' AND ', $where) : '')
         . ' ORDER BY id DESC LIMIT ' . (PAGE + 1);
    $entries = rows($sql, $params);
    $more = count($entries) > PAGE;
    $entries = array_slice($entries, 0, PAGE);

    page_start('Changelog');
    echo "<h1>Changelog</h1>\n<form method=\"get\" action=\"index.php\">\n";
    echo '<label>Status <select name="status"><option value="">any</option>';
    foreach (STATUSES as $s) {
        echo '<option', $s === $status ? ' selected' : '', '>', h($s), '</option>';
    }
    echo "</select></label>\n";
    echo '<label>Kind <select name="kind"><option value="">any</option>';
    foreach (KINDS as $k) {
        echo '<option', $k === $kind ? ' selected' : '', '>', h($k), '</option>';
    }
    echo "</select></label>\n<button>Filter</button></form>\n";

    if (!$entries) {
        echo "<p class=\"meta\">No entries.</p>\n";
    } else {
        echo "<table>\n<tr><th>#</th><th>Title</th><th>Kind</th><th>Status</th>"
            . "<th>Author</th><th>Comments</th><th>Last activity</th></tr>\n";
        foreach ($entries as $e) {
            printf("<tr class=\"entry\" data-id=\"%d\"><td>%d</td><td><a href=\"entry.php?id=%d\">%s</a></td>"
                   . "<td>%s</td><td class=\"st\">%s</td><td>%s</td>"
                   . "<td class=\"comments\">%d</td><td>%s</td></tr>\n",
                   $e['id'], $e['id'], $e['id'], h($e['title']), h($e['kind']),
                   h($e['status']), h($e['author']), $e['comment_count'],
                   h($e['last_activity']));
        }
        echo "</table>\n";
    }
    if ($more) {
        $q = ['before' => (string)end($entries)['id']];
        if ($status !== '') {
            $q['status'] = $status;
        }
        if ($kind !== '') {
            $q['kind'] = $kind;
        }
        echo '<p><a rel="next" href="index.php?', h(http_build_query($q)), "\">Older entries</a></p>\n";
    }
    page_end();
} catch (Throwable $e) {
    error_log('changelog dashboard: ' . $e->getMessage());
    fail_page(500, 'The changelog database is not available.');
}
