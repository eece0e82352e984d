import { expect } from 'chai';
import { compileTopics, unionTopics } from '../../../client/state/topics.ts';
import { MAX_TOPICS } from '../../../shared/topics.ts';

describe('topic patterns in the browser', function () {
  it('match like the server: * is any run of characters, dots are literal', function () {
    const matcher = compileTopics(['status:api.*', 'event:error']);
    expect(matcher.matches('status:api.v2')).to.equal(true);
    expect(matcher.matches('status:apixv2')).to.equal(false);
    expect(matcher.matches('event:error')).to.equal(true);
    expect(matcher.matches('event:warn')).to.equal(false);
  });

  it('the union of subscribers is everything as soon as one wants everything', function () {
    expect(unionTopics([['status:a'], null]).patterns).to.equal(null);
    expect(unionTopics([['status:b', 'status:a'], ['status:a']]).key).to.equal('status:a,status:b');
  });

  it('a union larger than the server allows becomes everything rather than an error', function () {
    const many = Array.from({ length: MAX_TOPICS + 1 }, (_, index) => [`status:s${index}`]);
    expect(unionTopics(many).patterns).to.equal(null);
  });
});

describe('topic patterns against hostile input', function () {
  it('match many-star patterns in linear time', function () {
    const matcher = compileTopics([`status:${'*a'.repeat(30)}*b`]);
    const started = Date.now();
    expect(matcher.matches(`status:${'a'.repeat(60)}`)).to.equal(false);
    expect(Date.now() - started).to.be.below(50);
  });
});
