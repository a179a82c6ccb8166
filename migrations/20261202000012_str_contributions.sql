-- Four eyes over everyone who shaped a report, not just its drafter. Every draft, edit and
-- submission is recorded with who did it and a hash of the content at that moment; nobody in
-- that list may approve or return the report, and approval needs the content to be what was
-- submitted. Kept in the console's schema: Drop's str_reports is not widened for it.
create table console.str_contributions (
    id             bigint generated always as identity primary key,
    str_id         text not null references str_reports (id),
    -- Null for someone outside the console (the demo's officer, reports drafted before this).
    staff_id       uuid references console.staff (id),
    staff_name     text not null,
    kind           text not null check (kind in ('drafted', 'edited', 'submitted')),
    content_sha256 text not null check (content_sha256 ~ '^[0-9a-f]{64}$'),
    at             timestamptz not null default now()
);
create index str_contributions_str_idx on console.str_contributions (str_id, staff_id);

-- What a reviewer reviews: the reason, narrative and the linked transactions.
create function console.str_content_sha256(report text) returns text
language sql stable as $$
    select encode(sha256(convert_to(
        coalesce((select details::text from str_reports where id = report), '') || '|' ||
        coalesce((select string_agg(transaction_id, ',' order by transaction_id)
                    from console.str_transactions where str_id = report), ''),
        'UTF8')), 'hex')
$$;

insert into console.str_contributions (str_id, staff_id, staff_name, kind, content_sha256, at)
select id, drafted_by, coalesce(drafted_by_name, 'unknown'), 'drafted', console.str_content_sha256(id), created_at
  from str_reports;
-- Reports waiting for review were submitted as they are now, by someone unrecorded.
insert into console.str_contributions (str_id, staff_id, staff_name, kind, content_sha256, at)
select id, drafted_by, coalesce(drafted_by_name, 'unknown'), 'submitted', console.str_content_sha256(id), updated_at
  from str_reports where status = 'pending_review';

-- The database keeps the rule too: an approval by a contributor, or of content that changed
-- since it was submitted, is refused whoever writes the row.
create function console.str_four_eyes() returns trigger
language plpgsql as $$
begin
    if new.status = 'approved' and old.status is distinct from 'approved' then
        if exists (select 1 from console.str_contributions c where c.str_id = new.id and c.staff_id = new.approved_by) then
            raise exception 'STR %: a contributor cannot approve it (four eyes)', new.id using errcode = 'check_violation';
        end if;
        if console.str_content_sha256(new.id) is distinct from
           (select c.content_sha256 from console.str_contributions c
             where c.str_id = new.id and c.kind = 'submitted' order by c.id desc limit 1) then
            raise exception 'STR %: the content is not what was submitted', new.id using errcode = 'check_violation';
        end if;
    end if;
    return new;
end
$$;
create trigger str_reports_four_eyes before update on str_reports
    for each row execute function console.str_four_eyes();
