import { message } from './api';

/** A form's busy flag and error text around its asynchronous submit. */
export class FormState {
  busy = $state(false);
  error = $state('');

  /** Runs `action` with the form busy; a failure becomes the error text shown to the user. */
  async run(action: () => Promise<void>): Promise<void> {
    this.busy = true;
    this.error = '';
    try {
      await action();
    } catch (err) {
      this.error = message(err);
    } finally {
      this.busy = false;
    }
  }
}
