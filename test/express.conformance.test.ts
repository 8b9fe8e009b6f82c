import { expressFactory } from './conformance/factories.js';
import { conformanceSuite } from './conformance/suite.js';

conformanceSuite('Express', expressFactory, { mount: '' });
conformanceSuite('Express', expressFactory, { mount: '/mnt' });
