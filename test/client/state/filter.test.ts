import { expect } from 'chai';
import { parseFilter } from '../../../client/state/filter.ts';

function filter(text: string) {
  const parsed = parseFilter(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.filter;
}

describe('dashboard filter', function () {
  it('an empty filter shows everything and asks for every topic', function () {
    const everything = filter('   ');
    expect(everything.topics).to.equal(null);
    expect(everything.matchesService('anything')).to.equal(true);
    expect(filter('*').topics).to.equal(null);
  });

  it('a plain word with wildcards selects services, metrics and their events, and every event level', function () {
    const api = filter('api*');
    expect(api.topics).to.deep.equal(['status:api*', 'metric:api*', 'event:*']);
    expect(api.matchesService('api-gateway')).to.equal(true);
    expect(api.matchesService('web')).to.equal(false);
    expect(api.matchesMetric('api.latency')).to.equal(true);
    expect(api.matchesEvent({ level: 'info', service: 'api' })).to.equal(true);
    expect(api.matchesEvent({ level: 'error', service: 'web' })).to.equal(false);
    expect(api.matchesEvent({ level: 'error', service: undefined })).to.equal(false);
  });

  it('kind prefixes narrow one kind only', function () {
    const narrow = filter('status:db.* , event:error metric:cpu.*');
    expect(narrow.text).to.equal('status:db.* event:error metric:cpu.*');
    expect(narrow.topics).to.deep.equal(['status:db.*', 'metric:cpu.*', 'event:error']);
    expect(narrow.matchesService('db.primary')).to.equal(true);
    expect(narrow.matchesMetric('db.primary')).to.equal(false);
    expect(narrow.matchesEvent({ level: 'error', service: undefined })).to.equal(true);
    expect(narrow.matchesEvent({ level: 'warn', service: 'db.primary' })).to.equal(false);
  });

  it('a name with a colon that is not a kind stays a name', function () {
    expect(filter('db:primary').topics).to.deep.equal(['status:db:primary', 'metric:db:primary', 'event:*']);
  });

  it('refuses characters the server would refuse, naming the word', function () {
    const bad = parseFilter('api <script>');
    expect(bad.ok).to.equal(false);
    if (!bad.ok) expect(bad.error).to.contain('<script>');
  });

  it('refuses a filter that makes more topics than the server allows', function () {
    const words = Array.from({ length: 30 }, (_, index) => `s${index}`).join(' ');
    expect(parseFilter(words).ok).to.equal(false);
  });
});
