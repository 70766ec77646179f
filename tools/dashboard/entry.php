<?php
/*
 * entry.php?id=N - one entry: its text, its status history, and its threaded
 * comments. The whole thread comes from one query ordered by the
 * materialised path (comments_thread index), which lists it depth-first with
 * replies in the order they were written; each comment is indented by its
 * depth.
 */

declare(strict_types=1);
require __DIR__ . '/lib.php';

try {
    $id = $_GET['id'] ?? '';
    if (!is_string($id) || !ctype_digit($id) || (int)$id < 1) {
        fail_page(400, 'Bad entry id.');
        exit;
    }
    $id = (int)$id;
    $e = rows('SELECT * FROM entries WHERE id = ?', [$id]);
    if (!$e) {
        fail_page(404, "Entry $id does not exist.");
        exit;
    }
    $e = $e[0];
    $history = rows('SELECT seq, from_status, to_status, actor, at FROM status_changes'
                    . ' WHERE entry_id = ? ORDER BY seq', [$id]);
    $comments = rows('SELECT id, parent_id, depth, author, body, created, edited, deleted'
                     . ' FROM comments'
                     . ' WHERE entry_id = ? ORDER BY path', [$id]);

    page_start('#' . $id . ' ' . $e['title']);
    echo '<p><a href="index.php">&larr; all entries</a></p>', "\n";
    printf("<article class=\"entry\" data-id=\"%d\">\n<h1>%s</h1>\n", $id, h($e['title']));
    printf("<p class=\"meta\">#%d &middot; <span class=\"kind\">%s</span> &middot; "
           . "<span class=\"st\">%s</span> &middot; by %s &middot; created %s &middot; "
           . "updated %s &middot; version %d &middot; %d comments</p>\n",
           $id, h($e['kind']), h($e['status']), h($e['author']), h($e['created']),
           h($e['updated']), $e['version'], $e['comment_count']);
    echo '<pre class="body">', h($e['body']), "</pre>\n</article>\n";

    echo "<h2>Status history</h2>\n";
    if (!$history) {
        echo "<p class=\"meta\">Still open since it was created.</p>\n";
    } else {
        echo "<table class=\"history\">\n<tr><th>When</th><th>Who</th><th>From</th><th>To</th></tr>\n";
        foreach ($history as $s) {
            printf("<tr><td>%s</td><td>%s</td><td>%s</td><td class=\"st\">%s</td></tr>\n",
                   h($s['at']), h($s['actor']), h($s['from_status']), h($s['to_status']));
        }
        echo "</table>\n";
    }

    printf("<h2>Comments (%d)</h2>\n", count($comments));
    foreach ($comments as $c) {
        printf("<div class=\"comment\" id=\"c%d\" data-depth=\"%d\" style=\"margin-left:%.1fem\">"
               . "<div class=\"meta\">%s &middot; %s%s%s</div><pre>%s</pre></div>\n",
               $c['id'], $c['depth'], 1.5 * (int)$c['depth'], h($c['author']),
               h($c['created']),
               $c['parent_id'] !== null ? sprintf(' &middot; reply to <a href="#c%d">#%d</a>',
                                                 $c['parent_id'], $c['parent_id']) : '',
               // a deleted comment is a tombstone: its place and replies stay
               (int)$c['deleted'] ? ' &middot; <em class="deleted">deleted</em>'
                   : ($c['edited'] !== null ? ' &middot; <span class="edited">edited '
                                              . h($c['edited']) . '</span>' : ''),
               h($c['body']));
    }
    page_end();
} catch (Throwable $ex) {
    error_log('changelog dashboard: ' . $ex->getMessage());
    fail_page(500, 'The changelog database is not available.');
}
